package notification

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// errNoRepository is why an event's repository cannot be told.
var errNoRepository = errors.New("not a remote Git URL")

// repositoryOf returns the repository path of a remote Git URL, without a
// leading slash or a ".git" suffix: "owner/repo" from
// https://github.com/owner/repo.git, git@github.com:owner/repo.git or
// ssh://git@host:22/owner/repo; "group/sub/project" likewise. Local paths
// and file:// URLs have none.
func repositoryOf(raw string) (string, error) {
	var path string
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return "", errNoRepository
		}
		switch u.Scheme {
		case "http", "https", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return "", errNoRepository
		}
		if u.Host == "" {
			return "", errNoRepository
		}
		path = u.Path
	default:
		// scp-like syntax, [user@]host:path, which Git takes when the colon
		// comes before any slash.
		host, p, ok := strings.Cut(raw, ":")
		if !ok || host == "" || strings.Contains(host, "/") {
			return "", errNoRepository
		}
		path = p
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	path = strings.TrimSuffix(path, "/")
	if !strings.Contains(path, "/") {
		return "", errNoRepository
	}
	return path, nil
}

// repository is the repository an event's commit status goes to: p's own,
// or the one derived from the event's URL.
func (p Provider) repository(e Event) (string, error) {
	if p.Repository != "" {
		return p.Repository, nil
	}
	repo, err := repositoryOf(e.URL)
	if err == nil {
		err = checkRepository(p.Type, repo)
	}
	if err != nil {
		return "", permanent(fmt.Errorf("%w: repository: cannot tell the %s repository of source %s (URL %q): %v; set the provider's repository",
			ErrDelivery, p.Type, e.Source, redactURL(e.URL), err))
	}
	return repo, nil
}

// redactURL drops the user information a URL may carry: a password, or a
// token given as the user name.
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User = nil
	return u.String()
}
