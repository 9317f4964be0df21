package notification

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// slack POSTs {"text": ...} to a Slack-compatible incoming webhook
// (Mattermost and others take the same). It skips pending events: a chat
// wants to hear how an attempt ended, not that one began.
type slack struct {
	p      Provider
	client *http.Client
}

func (s *slack) takes(e Event) bool { return e.State != StatePending }

func (s *slack) send(ctx context.Context, e Event) error {
	body, err := json.Marshal(map[string]string{"text": slackText(e)})
	if err != nil {
		return permanent(fmt.Errorf("%w: encode message: %v", ErrDelivery, err))
	}
	addr, err := s.p.address()
	if err != nil {
		return err
	}
	return post(ctx, s.client, request{url: addr, shown: hostOf(addr), body: body})
}

// slackText is the one line people read, such as
// "✅ keelson: source apps applied abc1234: 12 objects" or
// "❌ keelson: source apps failed abc1234 (HookFailed): ...".
func slackText(e Event) string {
	var b strings.Builder
	switch e.State {
	case StateSuccess:
		b.WriteString("✅ keelson: source " + slackEscape(e.Source) + " applied")
	case StateFailure:
		b.WriteString("❌ keelson: source " + slackEscape(e.Source) + " failed")
	default:
		b.WriteString("⏳ keelson: source " + slackEscape(e.Source) + " syncing")
	}
	if e.Revision != "" {
		b.WriteString(" " + shortRevision(e.Revision))
	}
	if e.State == StateFailure && e.Reason != "" {
		b.WriteString(" (" + slackEscape(e.Reason) + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + slackEscape(e.Message))
	}
	if e.Link != "" {
		b.WriteString(" <" + slackLink(e.Link) + "|details>")
	}
	return b.String()
}

// slackEscape escapes the three characters Slack's markup reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackLink keeps a URL from closing or splitting the <url|text> markup.
func slackLink(u string) string {
	return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(u)
}
