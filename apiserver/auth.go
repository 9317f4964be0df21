package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/keelson/keelson/internal/satoken"
)

// User is an authenticated caller, as Kubernetes names users.
type User struct {
	Name   string
	UID    string
	Groups []string
}

// Well-known users and groups, as in Kubernetes.
const (
	GroupMasters         = "system:masters"
	GroupNodes           = "system:nodes"
	GroupAuthenticated   = "system:authenticated"
	GroupUnauthenticated = "system:unauthenticated"
	UserAnonymous        = "system:anonymous"
	nodeUserPrefix       = "system:node:"
)

// InGroup says whether u is a member of group g.
func (u *User) InGroup(g string) bool { return slices.Contains(u.Groups, g) }

// NodeName returns the node an agent's user speaks for, if u is one.
func (u *User) NodeName() (string, bool) {
	name, ok := strings.CutPrefix(u.Name, nodeUserPrefix)
	return name, ok && name != "" && u.InGroup(GroupNodes)
}

type userKey struct{}

func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

func userFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// Tokens are static bearer tokens: the kube-apiserver token file format,
// `token,user,uid,"group1,group2"` per line.
type Tokens struct {
	users  map[string]*User
	byHash map[[sha256.Size]byte]*User // the same, by the token's SHA-256
}

// LoadTokens reads a token file.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens parses the token file format. Blank lines and lines starting
// with # are skipped.
func ParseTokens(r io.Reader) (*Tokens, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	t := &Tokens{users: map[string]*User{}, byHash: map[[sha256.Size]byte]*User{}}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 3 || rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("line %d: want token,user,uid[,\"group1,group2\"]", line)
		}
		if _, dup := t.users[rec[0]]; dup {
			return nil, fmt.Errorf("line %d: token used twice", line)
		}
		u := &User{Name: rec[1], UID: rec[2]}
		if len(rec) > 3 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		t.users[rec[0]] = u
		t.byHash[sha256.Sum256([]byte(rec[0]))] = u
	}
}

// tokenOf returns a token of the named user, for the API server to speak to a
// node's agent as that node.
func (t *Tokens) tokenOf(user string) (string, bool) {
	if t == nil {
		return "", false
	}
	for tok, u := range t.users {
		if u.Name == user {
			return tok, true
		}
	}
	return "", false
}

// lookupUser finds a token's user by the token's SHA-256, so that neither the
// time it takes nor the number of tokens tells anything of the tokens: a
// comparison with each token in turn cost a tenth of the server's CPU with
// 5,000 node tokens.
func (t *Tokens) lookupUser(token string) *User {
	if t == nil {
		return nil
	}
	return t.byHash[sha256.Sum256([]byte(token))]
}

// publicPaths answer without a token.
var publicPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true, "/version": true}

// authenticate resolves the caller from a bearer token, or anonymous when
// allowed; everything but the public paths needs one.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		var u *User
		if token, ok := bearer(r); ok {
			var err error
			if u, _, err = s.authenticateToken(r.Context(), token, nil); err != nil {
				if satoken.LooksLikeJWT(token) && s.refusals.Allow() {
					// The reason is for the server's log only: a client
					// holding a bad token learns nothing from it. The
					// lines are rationed, so that a flood of bad tokens
					// does not flood the log.
					s.log.Info("bearer token refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
				}
				writeStatus(w, apierrors.NewUnauthorized("the bearer token is not valid"))
				return
			}
		} else if s.cfg.AnonymousRead {
			u = &User{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}
		} else {
			writeStatus(w, apierrors.NewUnauthorized("a bearer token is needed: use a kubeconfig from `keelson kubeconfig`"))
			return
		}
		next.ServeHTTP(w, r.WithContext(withUser(r.Context(), u)))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
