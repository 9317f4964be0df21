package notification

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Headers of a webhook delivery.
const (
	// EventHeader names the kind of event a webhook body carries; its
	// value is "sync".
	EventHeader = "X-Keelson-Event"
	// SignatureHeader carries "sha256=<hex>", the HMAC-SHA256 of the body
	// under the key in Provider.SecretFile.
	SignatureHeader = "X-Keelson-Signature-256"
)

// webhookBody is the JSON a webhook receives: the event's fields.
type webhookBody struct {
	Source   string   `json:"source"`
	URL      string   `json:"url"`
	Revision string   `json:"revision"`
	State    State    `json:"state"`
	Severity Severity `json:"severity"`
	Reason   string   `json:"reason"`
	Message  string   `json:"message"`
	Link     string   `json:"link"`
	Time     string   `json:"time"`
}

// webhook POSTs events as JSON.
type webhook struct {
	p      Provider
	client *http.Client
}

func (w *webhook) takes(Event) bool { return true }

func (w *webhook) send(ctx context.Context, e Event) error {
	body, err := json.Marshal(webhookBody{
		Source: e.Source, URL: e.URL, Revision: e.Revision, State: e.State, Severity: e.Severity,
		Reason: e.Reason, Message: e.Message, Link: e.Link, Time: e.Time.Format(time.RFC3339),
	})
	if err != nil {
		return permanent(fmt.Errorf("%w: encode event: %v", ErrDelivery, err))
	}
	addr, err := w.p.address()
	if err != nil {
		return err
	}
	header := map[string]string{EventHeader: "sync"}
	if w.p.SecretFile != "" {
		key, err := readValue("secretFile", w.p.SecretFile)
		if err != nil {
			return err
		}
		header[SignatureHeader] = Sign([]byte(key), body)
	}
	return post(ctx, w.client, request{url: addr, shown: hostOf(addr), body: body, header: header})
}

// Sign returns the value of SignatureHeader for body under key:
// "sha256=" and the hex HMAC-SHA256. A receiver compares it with
// hmac.Equal.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
