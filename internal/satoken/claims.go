package satoken

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Claims are what a token says: Kubernetes' bound service account token
// claims. Times are whole seconds in tokens; Sign drops the fraction.
type Claims struct {
	// Issuer (iss) names who signed the token, a URL by convention, e.g.
	// https://keelson.default.svc. Sign takes it from the Signer.
	Issuer string
	// Audiences (aud) are the servers the token may be presented to.
	Audiences []string
	// Namespace and ServiceAccount name the ServiceAccount the token is
	// for; both required. ServiceAccountUID is its uid, so that a token
	// of a deleted and re-created account can be told apart.
	Namespace, ServiceAccount, ServiceAccountUID string
	// Pod and PodUID name the pod the token is bound to, so that an
	// authenticator can refuse it once that pod is gone. Empty for a token
	// bound to no pod.
	Pod, PodUID string
	// Node and NodeUID name the node the pod runs on, or the node a token
	// is bound to. Empty when unknown.
	Node, NodeUID string
	// IssuedAt (iat), NotBefore (nbf) and Expiry (exp): the token is valid
	// from NotBefore until, not including, Expiry. Expiry is required; a
	// zero IssuedAt or NotBefore is left out of the token.
	IssuedAt, NotBefore, Expiry time.Time
	// ID (jti) tells tokens apart, for audit; Sign fills in a random UUID
	// when it is empty.
	ID string
	// WarnAfter (kubernetes.io.warnafter), when set, is when the token's
	// use should start being reported: Kubernetes sets it on tokens whose
	// expiry it stretched for clients that do not reload tokens.
	WarnAfter time.Time
}

const subjectPrefix = "system:serviceaccount:"

// Subject returns the token's subject and the user name its bearer acts
// as: "system:serviceaccount:<namespace>:<name>".
func (c *Claims) Subject() string {
	return subjectPrefix + c.Namespace + ":" + c.ServiceAccount
}

// checkNames reports whether the namespace and ServiceAccount name are
// names Kubernetes accepts, so that the subject splits back into them.
func (c *Claims) checkNames() error {
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %s is not a valid name: %s", clip(c.Namespace), errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(c.ServiceAccount); len(errs) > 0 {
		return fmt.Errorf("service account name %s is not a valid name: %s", clip(c.ServiceAccount), errs[0])
	}
	return nil
}

// payload is a token's JSON. Fields are in the order of their names, as
// Kubernetes writes them, so that both write the same bytes.
type payload struct {
	Audience   audience     `json:"aud,omitempty"`
	Expiry     *numericDate `json:"exp,omitempty"`
	IssuedAt   *numericDate `json:"iat,omitempty"`
	Issuer     string       `json:"iss,omitempty"`
	ID         string       `json:"jti,omitempty"`
	Kubernetes *private     `json:"kubernetes.io,omitempty"`
	NotBefore  *numericDate `json:"nbf,omitempty"`
	Subject    string       `json:"sub,omitempty"`
}

// private is the "kubernetes.io" claim. Kubernetes always writes
// "serviceaccount", and the other objects only when the token names them.
type private struct {
	Namespace      string       `json:"namespace,omitempty"`
	Node           *ref         `json:"node,omitempty"`
	Pod            *ref         `json:"pod,omitempty"`
	ServiceAccount ref          `json:"serviceaccount"`
	WarnAfter      *numericDate `json:"warnafter,omitempty"`
}

type ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

func newRef(name, uid string) *ref {
	if name == "" && uid == "" {
		return nil
	}
	return &ref{Name: name, UID: uid}
}

func (r *ref) name() string {
	if r == nil {
		return ""
	}
	return r.Name
}

func (r *ref) uid() string {
	if r == nil {
		return ""
	}
	return r.UID
}

func toPayload(c *Claims) *payload {
	return &payload{
		Audience:  audience(c.Audiences),
		Expiry:    newDate(c.Expiry),
		IssuedAt:  newDate(c.IssuedAt),
		Issuer:    c.Issuer,
		ID:        c.ID,
		NotBefore: newDate(c.NotBefore),
		Subject:   c.Subject(),
		Kubernetes: &private{
			Namespace:      c.Namespace,
			Node:           newRef(c.Node, c.NodeUID),
			Pod:            newRef(c.Pod, c.PodUID),
			ServiceAccount: ref{Name: c.ServiceAccount, UID: c.ServiceAccountUID},
			WarnAfter:      newDate(c.WarnAfter),
		},
	}
}

// claims checks that p has the claims every token must have, and that its
// subject agrees with its private claims.
func (p *payload) claims() (*Claims, error) {
	if p.Expiry == nil {
		return nil, errors.New("no expiry (exp)")
	}
	k := p.Kubernetes
	if k == nil {
		return nil, errors.New("no \"kubernetes.io\" claim: not a bound service account token")
	}
	c := &Claims{
		Issuer:            p.Issuer,
		Audiences:         p.Audience,
		Namespace:         k.Namespace,
		ServiceAccount:    k.ServiceAccount.Name,
		ServiceAccountUID: k.ServiceAccount.UID,
		Pod:               k.Pod.name(),
		PodUID:            k.Pod.uid(),
		Node:              k.Node.name(),
		NodeUID:           k.Node.uid(),
		IssuedAt:          p.IssuedAt.time(),
		NotBefore:         p.NotBefore.time(),
		Expiry:            p.Expiry.time(),
		ID:                p.ID,
		WarnAfter:         k.WarnAfter.time(),
	}
	ns, name, ok := splitSubject(p.Subject)
	if !ok {
		return nil, fmt.Errorf("subject %s is not of the form %s<namespace>:<name>", clip(p.Subject), subjectPrefix)
	}
	if ns != c.Namespace || name != c.ServiceAccount {
		return nil, fmt.Errorf("subject %s disagrees with kubernetes.io: namespace %s, serviceaccount %s",
			clip(p.Subject), clip(c.Namespace), clip(c.ServiceAccount))
	}
	if err := c.checkNames(); err != nil {
		return nil, err
	}
	return c, nil
}

func splitSubject(sub string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(sub, subjectPrefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// audience is "aud", written as an array as Kubernetes writes it, even
// for one audience, and read as either an array or a single string, as RFC
// 7519 allows.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var err error
	switch {
	case string(b) == "null":
		*a = nil
	case b[0] == '"':
		*a = audience{""}
		err = json.Unmarshal(b, &(*a)[0])
	default:
		err = json.Unmarshal(b, (*[]string)(a))
	}
	if err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	return nil
}

// numericDate is a JWT time: seconds since the Unix epoch.
type numericDate int64

// maxDate is 9999-12-31T23:59:59Z, past which times no longer print as
// RFC 3339.
const maxDate = 253402300799

func newDate(t time.Time) *numericDate {
	if t.IsZero() {
		return nil
	}
	d := numericDate(t.Unix())
	return &d
}

func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return time.Unix(int64(*d), 0).UTC()
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// RFC 7519 allows fractions; the token's times are whole seconds.
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("a time (exp, iat, nbf or warnafter) is not a number of seconds")
	}
	if f < 0 || f > maxDate {
		return fmt.Errorf("time %.0f is out of range", f)
	}
	*d = numericDate(f)
	return nil
}
