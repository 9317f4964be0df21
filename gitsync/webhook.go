package gitsync

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// HookPrefix is the URL path under which Webhook answers, /hooks/<sync>.
const HookPrefix = "/hooks/"

// MaxHookBody bounds a webhook's body; GitHub caps its payloads at 25 MB but
// push events are far smaller, and the body is only read for its signature.
const MaxHookBody = 1 << 20

// Headers of the webhooks Webhook understands.
const (
	// HeaderGitHubSignature carries "sha256=<hex HMAC-SHA256 of the body>",
	// keyed with the secret.
	HeaderGitHubSignature = "X-Hub-Signature-256"
	// HeaderGitHubEvent names the event; "ping" is answered without a sync.
	HeaderGitHubEvent = "X-GitHub-Event"
	// HeaderGitLabToken carries the secret itself.
	HeaderGitLabToken = "X-Gitlab-Token"
)

// HookResponse is the JSON body of every answer of Webhook.
type HookResponse struct {
	// Sync is the name from the URL.
	Sync string `json:"sync"`
	// Triggered says whether the sync was asked to poll now.
	Triggered bool `json:"triggered"`
	// Message says what happened, for people.
	Message string `json:"message"`
}

// Webhook is an http.Handler for POST /hooks/<sync>: a push that GitHub or
// GitLab announces makes that sync poll at once instead of at its next
// interval. The sync's secret (Config.WebhookSecretFile, read at every
// request so it can be rotated without a restart) authenticates the request:
// GitHub's X-Hub-Signature-256 HMAC of the body, or GitLab's X-Gitlab-Token.
// A sync without a secret refuses hooks.
//
// Answers: 202 triggered; 200 for a GitHub ping; 404 unknown sync; 405 not
// a POST; 413 body over MaxHookBody; 401 signature or token missing or
// wrong; 403 the sync has no secret; 409 the sync is suspended; 500 the
// secret file cannot be read. Each with a HookResponse.
type Webhook struct {
	// Syncs are the syncs hooks may trigger. Required.
	Syncs *Syncs
	// Log gets a line per refused or failed hook. Optional.
	Log *slog.Logger
}

// ServeHTTP answers one hook.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, _ := strings.CutPrefix(r.URL.Path, HookPrefix)
	answer := func(code int, triggered bool, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if code >= 400 && code < 500 && h.Log != nil {
			// A wrong secret is worth a warning: a hook is misconfigured, or
			// someone is guessing. The rest is noise from scanners.
			level := slog.LevelDebug
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				level = slog.LevelWarn
			}
			h.Log.Log(r.Context(), level, "webhook refused", "component", "gitsync", "sync", name, "code", code, "reason", msg, "remote", r.RemoteAddr)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(HookResponse{Sync: name, Triggered: triggered, Message: msg})
	}
	cfg, ok := h.Syncs.Config(name)
	if !ok {
		answer(http.StatusNotFound, false, "no sync named %q on this server", name)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, false, "webhooks are POST requests, not %s", r.Method)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHookBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			answer(http.StatusRequestEntityTooLarge, false, "body is over %d bytes", MaxHookBody)
			return
		}
		answer(http.StatusBadRequest, false, "reading the body: %v", err)
		return
	}
	if cfg.WebhookSecretFile == "" {
		answer(http.StatusForbidden, false, "sync %q has no webhook secret, so it takes no hooks: set webhook.secretFile for it in the server's config file", name)
		return
	}
	secret, err := ReadHookSecret(cfg.WebhookSecretFile)
	if err != nil {
		answer(http.StatusInternalServerError, false, "the server cannot read the webhook secret of sync %q; its log says why", name)
		if h.Log != nil {
			h.Log.Error("webhook secret", "component", "gitsync", "sync", name, "err", err)
		}
		return
	}
	if code, why := authenticHook(r.Header, body, secret); code != 0 {
		answer(code, false, "%s", why)
		return
	}
	if cfg.Suspend {
		answer(http.StatusConflict, false, "sync %q is suspended: nothing is synced until suspend is removed from the server's config file and the server reloads it (SIGHUP) or restarts", name)
		return
	}
	if r.Header.Get(HeaderGitHubEvent) == "ping" {
		answer(http.StatusOK, false, "pong: the secret matches; pushes will sync %q", name)
		return
	}
	switch err := h.Syncs.Trigger(r.Context(), name); {
	case errors.Is(err, ErrUnknownSync):
		answer(http.StatusNotFound, false, "%v", err)
		return
	case err != nil:
		answer(http.StatusServiceUnavailable, false, "sync %q: the request could not be passed to the server running it: %v", name, err)
		return
	}
	answer(http.StatusAccepted, true, "sync %q triggered: it polls its source now", name)
}

// authenticHook checks the GitHub signature or GitLab token of a hook against
// secret, in constant time; it returns 0 when one of them matches.
func authenticHook(hdr http.Header, body, secret []byte) (code int, why string) {
	if sig := hdr.Get(HeaderGitHubSignature); sig != "" {
		hexSum, ok := strings.CutPrefix(sig, "sha256=")
		got, err := hex.DecodeString(hexSum)
		if !ok || err != nil {
			return http.StatusUnauthorized, HeaderGitHubSignature + " is not sha256=<hex>"
		}
		if !hmac.Equal(got, hookMAC(secret, body)) {
			return http.StatusUnauthorized, HeaderGitHubSignature + " does not match the body: is the webhook's secret the sync's?"
		}
		return 0, ""
	}
	if token := hdr.Get(HeaderGitLabToken); token != "" {
		if subtle.ConstantTimeCompare([]byte(token), secret) != 1 {
			return http.StatusUnauthorized, HeaderGitLabToken + " is not the sync's webhook secret"
		}
		return 0, ""
	}
	return http.StatusUnauthorized, "no " + HeaderGitHubSignature + " or " + HeaderGitLabToken + " header: set the webhook's secret to the sync's"
}

// ReadHookSecret reads a webhook secret file, without the line break editors
// add at its end.
func ReadHookSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

// SignHook returns the X-Hub-Signature-256 value of body under secret, as
// GitHub computes it.
func SignHook(secret, body []byte) string {
	return "sha256=" + hex.EncodeToString(hookMAC(secret, body))
}

func hookMAC(secret, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return mac.Sum(nil)
}
