package notification

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Description limits of the forges, in characters.
const (
	githubDescriptionMax = 140
	gitlabDescriptionMax = 255
)

// commitStatus is what the GitHub and GitLab providers share: they take
// Git events only, and name their status after the source by default.
type commitStatus struct {
	p      Provider
	client *http.Client
}

func (c *commitStatus) takes(e Event) bool { return e.Revision != "" }

// statusContext is the status's context (GitHub) or name (GitLab).
func (c *commitStatus) statusContext(e Event) string {
	if c.p.Context != "" {
		return c.p.Context
	}
	return "keelson/" + e.Source
}

// base is the API base URL without a trailing slash.
func (c *commitStatus) base(def string) (string, error) {
	addr, err := c.p.address()
	if err != nil {
		return "", err
	}
	if addr == "" {
		addr = def
	}
	return strings.TrimRight(addr, "/"), nil
}

// statusBody is the JSON of a commit status, alike on both forges.
type statusBody struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context,omitempty"`
	Name        string `json:"name,omitempty"`
}

// github sets commit statuses through GitHub's REST API.
type github struct{ commitStatus }

func (g *github) send(ctx context.Context, e Event) error {
	repo, err := g.p.repository(e)
	if err != nil {
		return err
	}
	base, err := g.base(DefaultGitHubAddress)
	if err != nil {
		return err
	}
	token, err := readValue("tokenFile", g.p.TokenFile)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(repo, "/")
	u := base + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + url.PathEscape(e.Revision)
	body, err := json.Marshal(statusBody{
		State:       string(e.State),
		TargetURL:   e.Link,
		Description: truncate(e.Message, githubDescriptionMax),
		Context:     g.statusContext(e),
	})
	if err != nil {
		return permanent(fmt.Errorf("%w: encode status: %v", ErrDelivery, err))
	}
	return post(ctx, g.client, request{url: u, shown: redactURL(u), body: body, header: map[string]string{
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
		"Authorization":        "Bearer " + token,
	}})
}

// gitlab sets commit statuses through GitLab's REST API.
type gitlab struct{ commitStatus }

func (g *gitlab) send(ctx context.Context, e Event) error {
	repo, err := g.p.repository(e)
	if err != nil {
		return err
	}
	base, err := g.base(DefaultGitLabAddress)
	if err != nil {
		return err
	}
	token, err := readValue("tokenFile", g.p.TokenFile)
	if err != nil {
		return err
	}
	state := string(e.State)
	if e.State == StateFailure {
		state = "failed"
	}
	u := base + "/projects/" + url.PathEscape(repo) + "/statuses/" + url.PathEscape(e.Revision)
	body, err := json.Marshal(statusBody{
		State:       state,
		TargetURL:   e.Link,
		Description: truncate(e.Message, gitlabDescriptionMax),
		Name:        g.statusContext(e),
	})
	if err != nil {
		return permanent(fmt.Errorf("%w: encode status: %v", ErrDelivery, err))
	}
	err = post(ctx, g.client, request{url: u, shown: redactURL(u), body: body, header: map[string]string{
		"PRIVATE-TOKEN": token,
	}})
	if alreadySet(err) {
		return nil
	}
	return err
}

// alreadySet tells GitLab's refusal to post a commit's state twice ("Cannot
// transition status via :run from :running"): the status already says what
// this delivery would, so it counts as delivered.
func alreadySet(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == http.StatusBadRequest && strings.Contains(se.body, "Cannot transition status")
}

// truncate cuts s to at most limit characters, ending a cut one with "…".
func truncate(s string, limit int) string {
	if len([]rune(s)) <= limit {
		return s
	}
	return string([]rune(s)[:limit-1]) + "…"
}
