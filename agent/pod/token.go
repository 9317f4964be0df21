package pod

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// defaultTokenSeconds is the API's default expirationSeconds of a
// serviceAccountToken source, for a pod that was not defaulted.
const defaultTokenSeconds = 3600

// maxTokenAge bounds how long a token is kept, whatever its expiry, as the
// kubelet does: a server that extends tokens' lifetimes (to a year, for
// clients that never re-read them) still has the pod's files renewed daily.
const maxTokenAge = 24 * time.Hour

// tokenKey is what a serviceAccountToken source asks for. The pod's tokens
// are kept by it: sources that ask for the same share one token, as with
// the kubelet's token manager.
type tokenKey struct {
	audience          string
	expirationSeconds int64
}

// token is a token bound to the pod, with when the agent obtained it (by
// its own clock, which the rotation is measured on) and when it expires.
type token struct {
	value   string
	issued  time.Time
	expires time.Time
}

// rotateAt is when the token is renewed: when 80% of its lifetime has
// passed, as the kubelet does, so a client that re-reads the file has a
// fresh token long before the old one expires.
func (t token) rotateAt() time.Time {
	return t.issued.Add(min(t.expires.Sub(t.issued)/5*4, maxTokenAge))
}

// serviceAccountToken returns the pod's token for the source: the one it
// has until its rotation is due, then a new one, and notes when the pod
// must be synced again for the next rotation. A token that cannot be
// renewed while the pod's is still valid is kept, and the pod's next sync
// tries again: a moment without the API must not fail the pod's volumes.
func (r *Runner) serviceAccountToken(ctx context.Context, pr *podRunner, p *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	key := tokenKey{audience: src.Audience, expirationSeconds: ptr.Deref(src.ExpirationSeconds, defaultTokenSeconds)}
	now := r.cfg.Clock.Now()
	t, ok := pr.tokens[key]
	if !ok || !now.Before(t.rotateAt()) {
		fresh, err := r.requestToken(ctx, p, key, now)
		switch {
		case err == nil:
			t = fresh
			pr.tokens[key] = t
		case ok && now.Before(t.expires):
			r.log.Warn("service account token not renewed, the pod keeps its own until it expires", "pod", p.Namespace+"/"+p.Name,
				"audience", key.audience, "expires", t.expires, "err", err)
		case ok:
			return "", fmt.Errorf("the token expired and a new one could not be obtained: %w", err)
		default:
			return "", err
		}
	}
	// A token due at once (clocks apart) waits for the pod's next resync,
	// never for a wake that would ask the API again and again.
	if due := t.rotateAt(); due.After(now) {
		pr.waitUntil(due)
	}
	return t.value, nil
}

func (r *Runner) requestToken(ctx context.Context, p *corev1.Pod, key tokenKey, now time.Time) (token, error) {
	var audiences []string // the API server's own
	if key.audience != "" {
		audiences = []string{key.audience}
	}
	value, expires, err := r.cfg.Lookup.ServiceAccountToken(ctx, p, audiences, key.expirationSeconds)
	if err == nil && value == "" {
		err = errors.New("the API answered without a token")
	}
	if err != nil {
		return token{}, err
	}
	return token{value: value, issued: now, expires: expires}, nil
}
