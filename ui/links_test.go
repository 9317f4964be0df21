package ui

import "testing"

func TestForgeLinks(t *testing.T) {
	for _, c := range []struct{ repo, file, commit string }{
		{"https://github.com/acme/shop.git", "https://github.com/acme/shop/blob/abc/deploy/web.yaml#L14", "https://github.com/acme/shop/commit/abc"},
		{"git@github.com:acme/shop.git", "https://github.com/acme/shop/blob/abc/deploy/web.yaml#L14", "https://github.com/acme/shop/commit/abc"},
		{"ssh://git@gitlab.example.com/group/sub/shop.git", "https://gitlab.example.com/group/sub/shop/-/blob/abc/deploy/web.yaml#L14", "https://gitlab.example.com/group/sub/shop/-/commit/abc"},
		{"https://bitbucket.org/acme/shop", "https://bitbucket.org/acme/shop/src/abc/deploy/web.yaml#lines-14", "https://bitbucket.org/acme/shop/commits/abc"},
		{"https://codeberg.org/acme/shop.git", "https://codeberg.org/acme/shop/src/commit/abc/deploy/web.yaml#L14", "https://codeberg.org/acme/shop/commit/abc"},
		{"file:///srv/git/shop", "", ""},
		{"/srv/git/shop", "", ""},
		{"https://git.example.com/shop.git", "", ""},
		{"https://github.com/acme", "", ""},
	} {
		f, ok := forgeOf(c.repo)
		if !ok {
			if c.file != "" {
				t.Errorf("%s: no forge", c.repo)
			}
			continue
		}
		if c.file == "" {
			t.Errorf("%s: forge %+v, want none", c.repo, f)
			continue
		}
		if got := f.fileURL("abc", "deploy/web.yaml", "14"); got != c.file {
			t.Errorf("%s: file %s, want %s", c.repo, got, c.file)
		}
		if got := f.commitURL("abc"); got != c.commit {
			t.Errorf("%s: commit %s, want %s", c.repo, got, c.commit)
		}
	}
}

func TestSplitError(t *testing.T) {
	gh, _ := forgeOf("https://github.com/acme/shop")
	for msg, want := range map[string]fileError{
		"deploy/web.yaml:14:7: spec.replicas: must be an integer": {File: "deploy/web.yaml", Line: "14", Rest: "spec.replicas: must be an integer",
			URL: "https://github.com/acme/shop/blob/r1/deploy/web.yaml#L14"},
		"revision ff822ffa3c7c not applied: deploy/b.yaml:5:7: data: must be an object": {Before: "revision ff822ffa3c7c not applied: ",
			File: "deploy/b.yaml", Line: "5", Rest: "data: must be an object", URL: "https://github.com/acme/shop/blob/r1/deploy/b.yaml#L5"},
		"kustomization.yaml: resource base missing": {File: "kustomization.yaml", Rest: "resource base missing", URL: "https://github.com/acme/shop/blob/r1/kustomization.yaml"},
		"fetch: connection refused":                 {Rest: "fetch: connection refused"},
	} {
		if got := splitError(msg, gh, true, "r1"); got != want {
			t.Errorf("%q:\n got %+v\nwant %+v", msg, got, want)
		}
	}
}
