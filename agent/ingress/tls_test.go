package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// testCA issues the certificates of a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// secret issues a certificate for hosts and returns it in a
// kubernetes.io/tls Secret.
func (ca *testCA) secret(t testing.TB, name string, hosts ...string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		},
	}
}

// withTLS adds a TLS entry to an Ingress.
func withTLS(ing *networkingv1.Ingress, secret string, hosts ...string) *networkingv1.Ingress {
	ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{SecretName: secret, Hosts: hosts})
	return ing
}

// httpsGet asks the proxy's HTTPS address for https://host/ on a new
// connection, verifying its certificate with roots (nil: not verified),
// offering h2 and HTTP/1.1.
func httpsGet(t testing.TB, p *Proxy, roots *x509.CertPool, host string) reply {
	t.Helper()
	_, addr := p.Addrs()
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	tr := &http.Transport{
		Protocols:       &protos,
		TLSClientConfig: &tls.Config{RootCAs: roots, InsecureSkipVerify: roots == nil},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr.String())
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, req)
}

func peerName(r reply) string {
	if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
		return ""
	}
	return r.tls.PeerCertificates[0].Subject.CommonName
}

// TestSNIPicksCertificate: each host gets the certificate of its Ingress's
// TLS entry, by exact host, wildcard, or the rules' hosts when the entry
// names none; HTTPS speaks HTTP/2 and tells the backend so.
func TestSNIPicksCertificate(t *testing.T) {
	ca := newCA(t)
	web := newUpstream(t, "web")
	e := newEnv(t, objects(serviceFor(web), []runtime.Object{
		ca.secret(t, "a-tls", "a.example.com"),
		ca.secret(t, "b-tls", "b.example.com"),
		ca.secret(t, "w-tls", "*.w.example.com"),
		ca.secret(t, "c-tls", "c.example.com"),
		withTLS(ingress("a", 0, rule("a.example.com", prefix("/", "web"))), "a-tls", "a.example.com"),
		withTLS(withTLS(ingress("b", 1, rule("b.example.com", prefix("/", "web")), rule("*.w.example.com", prefix("/", "web"))),
			"b-tls", "b.example.com"), "w-tls", "*.w.example.com"),
		withTLS(ingress("c", 2, rule("c.example.com", prefix("/", "web"))), "c-tls"),
	})...)
	p := e.proxy()
	for _, tc := range []struct{ host, cert string }{
		{"a.example.com", "a.example.com"},
		{"b.example.com", "b.example.com"},
		{"x.w.example.com", "*.w.example.com"},
		{"c.example.com", "c.example.com"},
	} {
		r := httpsGet(t, p, ca.pool, tc.host)
		if got := peerName(r); got != tc.cert {
			t.Errorf("%s: certificate of %q, want %q", tc.host, got, tc.cert)
		}
		if r.served() != "web" || r.proto != 2 {
			t.Errorf("%s: served by %s over HTTP/%d, want web over HTTP/2", tc.host, r.served(), r.proto)
		}
		if got := r.header.Get("X-Seen-Forwarded-Proto"); got != "https" {
			t.Errorf("%s: X-Forwarded-Proto %q, want https", tc.host, got)
		}
	}
	if evs := e.eventsOf(ns+"/a", ReasonTLSSecretNotFound); len(evs) != 0 {
		t.Errorf("unexpected events: %v", evs)
	}
}

// TestBadSecretFallsBack: a TLS entry whose Secret is missing, or holds no
// usable pair, leaves its host with the self-signed default certificate and
// the Ingress with one Warning; the Secret appearing is picked up.
func TestBadSecretFallsBack(t *testing.T) {
	ca := newCA(t)
	web := newUpstream(t, "web")
	bad := ca.secret(t, "bad-tls", "bad.example.com")
	bad.Data[corev1.TLSPrivateKeyKey] = []byte("not a key")
	e := newEnv(t, objects(serviceFor(web), []runtime.Object{
		bad,
		withTLS(ingress("missing", 0, rule("m.example.com", prefix("/", "web"))), "m-tls", "m.example.com"),
		withTLS(ingress("bad", 0, rule("bad.example.com", prefix("/", "web"))), "bad-tls", "bad.example.com"),
	})...)
	p := e.proxy()
	const fallback = "keelson ingress default certificate"
	for _, h := range []string{"m.example.com", "bad.example.com"} {
		r := httpsGet(t, p, nil, h)
		if got := peerName(r); got != fallback || r.served() != "web" {
			t.Errorf("%s: certificate %q, served by %s; want %q and web", h, got, r.served(), fallback)
		}
	}
	if evs := e.eventsOf(ns+"/missing", ReasonTLSSecretNotFound); len(evs) != 1 {
		t.Errorf("missing Secret: events %+v, want one %s", evs, ReasonTLSSecretNotFound)
	}
	if evs := e.eventsOf(ns+"/bad", ReasonTLSSecretInvalid); len(evs) != 1 {
		t.Errorf("bad Secret: events %+v, want one %s", evs, ReasonTLSSecretInvalid)
	}

	e.create(ca.secret(t, "m-tls", "m.example.com"))
	eventually(t, "the new Secret's certificate", func() bool {
		return peerName(httpsGet(t, p, nil, "m.example.com")) == "m.example.com"
	})
}

// TestCertificateParsedOncePerChange: building again with the same Secret
// does not parse it again; a new version of it does.
func TestCertificateParsedOncePerChange(t *testing.T) {
	ca := newCA(t)
	s := ca.secret(t, "a-tls", "a.example.com")
	s.ResourceVersion = "1"
	ing := withTLS(ingress("a", 0, rule("a.example.com", prefix("/", "web"))), "a-tls", "a.example.com")
	src := sourceOf(ing, s)
	certs := newCertCache()
	fw := newForwarder(discard())
	for range 3 {
		tb, _ := build(src, fw, certs)
		if tb.certificate("a.example.com") == nil {
			t.Fatal("no certificate for a.example.com")
		}
	}
	if certs.parses != 1 {
		t.Errorf("3 builds parsed the Secret %d times, want once", certs.parses)
	}
	s2 := ca.secret(t, "a-tls", "a.example.com")
	s2.ResourceVersion = "2"
	build(sourceOf(ing, s2), fw, certs)
	if certs.parses != 2 {
		t.Errorf("a new version of the Secret: %d parses in all, want 2", certs.parses)
	}
}

// TestH2C: plain HTTP takes HTTP/2 with prior knowledge; the backend gets
// HTTP/1.1, or h2c when its service port's appProtocol says so.
func TestH2C(t *testing.T) {
	web, h2 := newUpstream(t, "web"), newUpstream(t, "h2")
	e := newEnv(t, objects(serviceFor(web), []runtime.Object{
		service("h2", func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = ptr.To(appProtocolH2C) }),
		slice("h2-1", "h2", h2.port, true, "127.0.0.1"),
		ingress("web", 0, rule("web.example.com", prefix("/", "web")), rule("h2.example.com", prefix("/", "h2"))),
	})...)
	p := e.proxy()
	httpAddr, _ := p.Addrs()
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	for host, want := range map[string]string{"web.example.com": "HTTP/1.1", "h2.example.com": "HTTP/2.0"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr.String()+"/", nil)
		req.Host = host
		r := send(t, &http.Client{Transport: tr}, req)
		if r.status != http.StatusOK || r.proto != 2 {
			t.Errorf("%s: %d over HTTP/%d, want 200 over HTTP/2", host, r.status, r.proto)
		}
		if got := r.header.Get("X-Seen-Proto"); got != want {
			t.Errorf("%s: the backend was asked over %s, want %s", host, got, want)
		}
	}
}
