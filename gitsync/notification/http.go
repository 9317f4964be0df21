package notification

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody bounds how much of an answer's body is read into an error.
const maxErrorBody = 1 << 10

// request is one POST of a JSON body.
type request struct {
	url string
	// shown names the endpoint in errors and logs: the URL itself when it
	// holds no secret, its host otherwise.
	shown  string
	body   []byte
	header map[string]string
}

// statusError is an answer other than 2xx.
type statusError struct {
	shown      string
	code       int
	body       string
	retryAfter time.Duration
}

// Error says where, what status and what the endpoint said.
func (e *statusError) Error() string {
	msg := fmt.Sprintf("POST %s: %d %s", e.shown, e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
	}
	return fmt.Sprintf("%s: %s", ErrDelivery.Error(), msg)
}

// Unwrap makes the error match ErrDelivery.
func (e *statusError) Unwrap() error { return ErrDelivery }

// retryable tells the answers that may go another way later: a timeout, a
// rate limit, the server's own failure. Other 4xx say the request is wrong.
func (e *statusError) retryable() bool {
	return e.code == http.StatusRequestTimeout || e.code == http.StatusTooManyRequests || e.code >= 500
}

// permanentError is a failure that retrying cannot mend.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error { return permanentError{err} }

// retryable reports whether a failed delivery is worth another attempt:
// network errors, unreadable files (a secret being rotated) and the
// statuses statusError.retryable names are; the rest is not.
func retryable(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.retryable()
	}
	return true
}

// post sends r and reads the answer. The URL stays out of a network error,
// which net/http would quote whole.
func post(ctx context.Context, client *http.Client, r request) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return permanent(fmt.Errorf("%w: POST %s: %v", ErrDelivery, r.shown, redact(err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keelson")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %v", ErrDelivery, r.shown, redact(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &statusError{
		shown:      r.shown,
		code:       resp.StatusCode,
		body:       oneLine(string(body)),
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
	}
}

// redact drops the URL from a *url.Error, keeping what went wrong.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// oneLine folds an answer's body onto one line for a log.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
}

// parseRetryAfter reads a Retry-After header in seconds; an HTTP date or
// nonsense counts as absent.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// readValue reads a file holding one value (a token, a key, a URL), trimmed
// of surrounding white space. The value never goes into the error.
func readValue(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrDelivery, field, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%w: %s: %s is empty", ErrDelivery, field, path)
	}
	return v, nil
}

// address is p's Address, read from AddressFile when that is set.
func (p Provider) address() (string, error) {
	if p.AddressFile == "" {
		return p.Address, nil
	}
	a, err := readValue("addressFile", p.AddressFile)
	if err != nil {
		return "", err
	}
	if err := checkHTTPURL(a); err != nil {
		return "", permanent(fmt.Errorf("%w: addressFile: %s: content %v", ErrDelivery, p.AddressFile, err))
	}
	return a, nil
}

// hostOf names an endpoint whose URL may hold a secret by its host alone.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the configured address"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
