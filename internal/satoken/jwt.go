package satoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxTokenBytes bounds the tokens Verify reads. Kubernetes' are under 2 KiB;
// the bound keeps a client from making the server decode megabytes.
const maxTokenBytes = 16 << 10

// LooksLikeJWT reports whether a bearer token has the shape of a JWT: three
// dot-separated base64url parts, the first a JSON object. It checks no
// signature or claim, and so lets an authenticator tell a ServiceAccount
// token from a static token cheaply before it verifies either.
func LooksLikeJWT(token string) bool {
	_, err := parseHeader(token)
	return err == nil
}

// header is the part of a JWS header Verify reads before go-jose parses the
// token, to refuse early and in plain words.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

func parseHeader(token string) (*header, error) {
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("token is %d bytes, more than the %d accepted", len(token), maxTokenBytes)
	}
	parts := strings.SplitN(token, ".", 4)
	if len(parts) == 1 {
		return nil, errors.New("token has no dots: a JWT is header.payload.signature")
	}
	if len(parts) != 3 {
		return nil, fmt.Errorf("token has %d dot-separated parts, want 3 (header.payload.signature)", strings.Count(token, ".")+1)
	}
	if parts[0] == "" || parts[1] == "" {
		return nil, errors.New("token has an empty header or payload")
	}
	for i, name := range []string{"header", "payload", "signature"} {
		if !isBase64URL(parts[i]) {
			return nil, fmt.Errorf("token %s is not unpadded base64url", name)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("token header is not unpadded base64url")
	}
	var h header
	if !bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("{")) || json.Unmarshal(raw, &h) != nil {
		return nil, errors.New("token header is not a JSON object")
	}
	return &h, nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// clip quotes s for a message, cut short, as s may come from a client.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}

// clipList quotes at most a few of list for a message.
func clipList(list []string) string {
	const limit = 4
	quoted := make([]string, 0, limit)
	for _, s := range list[:min(len(list), limit)] {
		quoted = append(quoted, clip(s))
	}
	more := ""
	if len(list) > limit {
		more = fmt.Sprintf(" and %d more", len(list)-limit)
	}
	return "[" + strings.Join(quoted, " ") + more + "]"
}
