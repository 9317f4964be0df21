package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// errSignedOut is a request whose token the API no longer takes.
var errSignedOut = errors.New("ui: the token is not valid")

// client reads the API as one person: every request carries their token, so
// the API decides what they see, as it does for kubectl.
type client struct {
	hc    *http.Client
	token string
}

// apiHost names the API in URLs the in-process transport never dials.
const apiHost = "api.keelson.invalid"

// do sends a request for path, unescaped: the URL escapes it, so no part
// of a path can turn into a query or a fragment.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: apiHost, Path: path, RawQuery: q.Encode()}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, errSignedOut
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var st metav1.Status
	if json.Unmarshal(b, &st) == nil && st.Kind == "Status" {
		return nil, apierrors.FromObject(&st)
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
}

// getInto decodes the JSON object at path into v.
func (c *client) getInto(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// stream returns the body at path as it comes: a watch or a followed log.
func (c *client) stream(ctx context.Context, path string, q url.Values) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// whoAmI returns the token's user, as kubectl auth whoami asks for it.
func (c *client) whoAmI(ctx context.Context) (string, error) {
	body, _ := json.Marshal(authenticationv1.SelfSubjectReview{
		TypeMeta: metav1.TypeMeta{Kind: "SelfSubjectReview", APIVersion: "authentication.k8s.io/v1"},
	})
	resp, err := c.do(ctx, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", nil, body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var rev authenticationv1.SelfSubjectReview
	if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil {
		return "", fmt.Errorf("decode self-subject review: %w", err)
	}
	return rev.Status.UserInfo.Username, nil
}

// getRaw returns the body at path.
func (c *client) getRaw(ctx context.Context, path string, q url.Values) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
