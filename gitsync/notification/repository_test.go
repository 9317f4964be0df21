package notification

import (
	"errors"
	"testing"
)

func TestRepositoryOf(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" when none can be told
	}{
		{"https://github.com/owner/repo", "owner/repo"},
		{"https://github.com/owner/repo.git", "owner/repo"},
		{"https://github.com/owner/repo/", "owner/repo"},
		{"https://x-access-token:secret@github.com/owner/repo.git", "owner/repo"},
		{"http://git.example:8080/owner/repo.git", "owner/repo"},
		{"git@github.com:owner/repo.git", "owner/repo"},
		{"github.com:owner/repo", "owner/repo"},
		{"ssh://git@github.com/owner/repo.git", "owner/repo"},
		{"ssh://git@gitlab.example:2222/group/sub/project.git", "group/sub/project"},
		{"git://git.example/group/project", "group/project"},
		{"git+ssh://git@host/group/project.git", "group/project"},
		{"https://github.com/owner", ""},
		{"https://github.com/", ""},
		{"file:///srv/git/apps", ""},
		{"/srv/git/apps", ""},
		{"./apps", ""},
		{"apps", ""},
		{"", ""},
		{"https:///owner/repo", ""},
		{"ftp://host/owner/repo", ""},
		{"https://host/%zz/repo", ""},
		{`C:\repos\apps`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := repositoryOf(tc.url)
			if tc.want == "" {
				if err == nil {
					t.Errorf("repositoryOf = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("repositoryOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestProviderRepository(t *testing.T) {
	tests := []struct {
		name string
		p    Provider
		url  string
		want string // "" for an error
	}{
		{"github two segments", Provider{Type: GitHub}, "https://github.com/o/r.git", "o/r"},
		{"github three segments", Provider{Type: GitHub}, "https://ghe.example/a/b/c", ""},
		{"gitlab subgroups", Provider{Type: GitLab}, "https://gitlab.com/a/b/c.git", "a/b/c"},
		{"configured wins", Provider{Type: GitLab, Repository: "x/y"}, "/srv/git", "x/y"},
		{"local path", Provider{Type: GitLab}, "/srv/git/apps", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.repository(Event{Source: "s", URL: tc.url})
			if tc.want == "" {
				if !errors.Is(err, ErrDelivery) || retryable(err) {
					t.Errorf("repository = %q, %v; want a permanent ErrDelivery", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("repository = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://x-access-token:s3cret@github.com/o/r": "https://github.com/o/r",
		"https://s3cret@github.com/o/r":                "https://github.com/o/r",
		"https://github.com/o/r":                       "https://github.com/o/r",
		"git@github.com:o/r.git":                       "git@github.com:o/r.git",
		"https://us er:s3cret@host/o/r":                "(an unparsable URL)",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
