package chartrepo

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// get fetches u, at most limit bytes. what names it in errors ("index",
// "archive").
func (f *Fetcher) get(ctx context.Context, u string, limit int64, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w %s %s: %v", ErrUnreachable, what, u, err)
	}
	resp, err := f.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w %s %s: %v", ErrUnreachable, what, u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s %s: HTTP %s: %w; vendor the chart into the repository", what, u, resp.Status, ErrAuth)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w %s %s: HTTP %s", ErrUnreachable, what, u, resp.Status)
	case resp.ContentLength > limit:
		return nil, fmt.Errorf("%s %s is %w: %d bytes, more than keelson's bound of %d", what, u, ErrTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s %s: %v", ErrUnreachable, what, u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s is %w: more than keelson's bound of %d bytes", what, u, ErrTooLarge, limit)
	}
	return data, nil
}
