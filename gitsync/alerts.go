package gitsync

import (
	"net/url"
	"strings"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/gitsync/notification"
)

// Notifications tells people about sync attempts (ServerConfig's
// notifications section): Syncs hands every attempt of every source to
// Dispatcher, pending when it starts, success or failure when it ends.
type Notifications struct {
	// Providers are the endpoints told, with their filters.
	Providers []notification.Provider
	// Link, when set, is the "see more" address of each event, with
	// {source} and {revision} replaced (a dashboard's page of the sync).
	Link string
}

// linkOf fills in the link template of one event.
func (n Notifications) linkOf(source, revision string) string {
	if n.Link == "" {
		return ""
	}
	return strings.NewReplacer("{source}", url.PathEscape(source), "{revision}", url.PathEscape(revision)).Replace(n.Link)
}

// startEvent is the event of an attempt that begins.
func startEvent(cfg Config, rev Revision, link string) notification.Event {
	return notification.Event{
		Source: cfg.Name, URL: cfg.Repo, Revision: gitRevision(rev), State: notification.StatePending,
		Reason: keelsonv1alpha1.ReasonProgressing, Message: "syncing revision " + rev.Short(), Link: link,
	}
}

// endEvent is the event of an attempt that ended. A wait for dependencies
// is still pending: nothing was tried.
func endEvent(cfg Config, st Status, link string) notification.Event {
	e := notification.Event{
		Source: cfg.Name, URL: cfg.Repo, Revision: gitRevision(st.LastAttempted),
		Reason: st.Reason, Message: st.Message, Link: link, Time: st.LastAttemptTime,
	}
	switch st.Reason {
	case ReasonSucceeded:
		e.State = notification.StateSuccess
	case ReasonDependencyNotReady:
		e.State = notification.StatePending
	default:
		e.State = notification.StateFailure
	}
	return e
}

// gitRevision is a revision's commit hash, "" when it is not a commit.
func gitRevision(r Revision) string {
	if !r.FromGit {
		return ""
	}
	return r.ID
}
