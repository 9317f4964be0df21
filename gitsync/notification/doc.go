// Package notification tells people the outcome of each sync attempt, as
// Flux's notification-controller does. A sync loop calls Notify when an
// attempt of its source starts (StatePending) and when it ends
// (StateSuccess or StateFailure); a Dispatcher delivers each Event to the
// configured providers.
//
// Providers (Provider.Type) and what they receive:
//
//   - webhook: a POST of the event as JSON, with the fields source, url,
//     revision, state, severity, reason, message, link and time (RFC 3339),
//     Content-Type application/json and header X-Keelson-Event: sync. With
//     SecretFile the body is signed in header X-Keelson-Signature-256 as
//     sha256=<hex HMAC-SHA256>, the scheme of GitHub's X-Hub-Signature-256;
//     a receiver checks it with Sign and hmac.Equal.
//   - slack: a POST of {"text": "..."} to a Slack-compatible incoming
//     webhook (Mattermost and others take the same), one line such as
//     "✅ keelson: source apps applied abc1234: 12 objects", "❌ keelson:
//     source apps failed abc1234 (HookFailed): ..." with the event's link as
//     <url|details>. Pending events are not sent: a chat wants to hear how an
//     attempt ended, not that each one began.
//   - github: a commit status on the synced commit, POST
//     {address}/repos/{owner}/{repo}/statuses/{sha}, state pending, success
//     or failure, context "keelson/<source>" unless Context says otherwise,
//     the message (cut to 140 characters) as description and the link as
//     target_url. Authenticated by the token in TokenFile.
//   - gitlab: likewise, POST {address}/projects/{path}/statuses/{sha} with
//     state pending, success or failed; a 400 "Cannot transition status",
//     GitLab's answer to a state posted twice, counts as delivered.
//
// Commit-status providers skip events without a Revision (sources that are
// not Git) and, when Repository is empty, derive the repository from the
// event's URL (https://github.com/owner/repo.git, git@host:owner/repo.git,
// ssh://git@host/group/project.git); an event whose repository cannot be
// told is dropped with a log line.
//
// Filters: a provider takes only the events of its Sources (all when
// empty) at or above its Severity (SeverityError: failures only).
//
// Delivery: each provider has its own queue (Options.QueueSize; when full,
// the oldest waiting event is dropped, so Notify never blocks a sync) and
// goroutine, which delivers its events in order. A failed delivery is
// retried up to Options.MaxAttempts times with a doubling back-off when it
// may go another way later (network errors, 408, 429, 5xx); other 4xx say
// the request is wrong and are not retried. Files (AddressFile, SecretFile,
// TokenFile) are read at each delivery, so secrets rotate without a
// restart. Logs and errors never carry tokens, keys or secret addresses.
//
// Usage:
//
//	d, err := notification.New([]notification.Provider{{
//		Name:      "github",
//		Type:      notification.GitHub,
//		TokenFile: "/etc/keelson/github-token",
//	}, {
//		Name:        "team-chat",
//		Type:        notification.Slack,
//		AddressFile: "/etc/keelson/slack-url",
//		Severity:    notification.SeverityError,
//	}}, notification.Options{Log: log})
//	if err != nil {
//		return err
//	}
//	go d.Run(ctx)
//
//	d.Notify(notification.Event{
//		Source:   "apps",
//		URL:      "https://github.com/example/apps.git",
//		Revision: rev,
//		State:    notification.StateSuccess,
//		Reason:   "Succeeded",
//		Message:  "12 objects applied",
//	})
package notification
