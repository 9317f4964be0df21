package ui

import (
	"net/url"
	"regexp"
	"strings"
)

// forge is a Git host whose web pages show a file or a commit at a revision.
type forge struct {
	base string // https://host/owner/repo
	kind string // github, gitlab, bitbucket, gitea
}

// forgeOf recognises the Git hosts people use by their URL: GitHub, GitLab,
// Bitbucket, Gitea, Forgejo and Codeberg. Other URLs (file://, a plain
// directory, a host keelson cannot tell) get no links.
func forgeOf(repo string) (forge, bool) {
	host, path, ok := splitRepoURL(repo)
	if !ok {
		return forge{}, false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if strings.Count(path, "/") < 1 {
		return forge{}, false
	}
	f := forge{base: "https://" + host + "/" + path}
	switch h := strings.ToLower(host); {
	case h == "github.com" || strings.HasPrefix(h, "github."):
		f.kind = "github"
	case strings.Contains(h, "gitlab"):
		f.kind = "gitlab"
	case h == "bitbucket.org":
		f.kind = "bitbucket"
	case h == "codeberg.org" || strings.Contains(h, "gitea") || strings.Contains(h, "forgejo"):
		f.kind = "gitea"
	default:
		return forge{}, false
	}
	return f, true
}

// scpLike is git's user@host:path form.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(.+)$`)

func splitRepoURL(repo string) (host, path string, ok bool) {
	if m := scpLike.FindStringSubmatch(repo); m != nil {
		return m[1], m[2], true
	}
	u, err := url.Parse(repo)
	if err != nil || u.Hostname() == "" {
		return "", "", false
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
		return u.Hostname(), u.Path, true
	}
	return "", "", false
}

// fileURL is the web page of file at rev, at line when it is not 0.
func (f forge) fileURL(rev, file string, line string) string {
	file = strings.TrimPrefix(file, "/")
	var u string
	switch f.kind {
	case "github":
		u = f.base + "/blob/" + rev + "/" + file
	case "gitlab":
		u = f.base + "/-/blob/" + rev + "/" + file
	case "bitbucket":
		u = f.base + "/src/" + rev + "/" + file
	case "gitea":
		u = f.base + "/src/commit/" + rev + "/" + file
	}
	if line == "" {
		return u
	}
	if f.kind == "bitbucket" {
		return u + "#lines-" + line
	}
	return u + "#L" + line
}

// commitURL is the web page of the commit rev.
func (f forge) commitURL(rev string) string {
	switch f.kind {
	case "gitlab":
		return f.base + "/-/commit/" + rev
	case "bitbucket":
		return f.base + "/commits/" + rev
	}
	return f.base + "/commit/" + rev
}

// fileError is one of a sync's errors, split where it names a file.
type fileError struct {
	// Before is the text before the file ("revision 1a2b not applied: ").
	Before     string
	File, Line string
	Rest       string
	// URL is the file at the attempted revision, when the host has pages.
	URL string
}

// atFile finds "deploy/web.yaml:14:7: " or "web.yaml: " in a message: the
// first file of the repository it names, by its extension.
var atFile = regexp.MustCompile(`(?:^|\s)([^\s:]+\.(?:ya?ml|json|cue|jsonnet|tpl|toml|env|txt))(?::(\d+))?(?::\d+)?: `)

func splitError(msg string, f forge, hasForge bool, rev string) fileError {
	m := atFile.FindStringSubmatchIndex(msg)
	if m == nil {
		return fileError{Rest: msg}
	}
	e := fileError{Before: msg[:m[2]], File: msg[m[2]:m[3]], Rest: msg[m[1]:]}
	if m[4] >= 0 {
		e.Line = msg[m[4]:m[5]]
	}
	if hasForge && rev != "" {
		e.URL = f.fileURL(rev, e.File, e.Line)
	}
	return e
}
