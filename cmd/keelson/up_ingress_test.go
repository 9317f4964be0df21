package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
)

// ingressWait bounds the waits of TestIngressAndLoadBalancerOnContainerd:
// a hang guard, not a measure.
const ingressWait = 3 * time.Minute

// sitesApp is two sites, a and b, each a Deployment serving its name over
// HTTP on 8080 and a Service; an Ingress routing a.example.test to a and
// b.example.test to b, over HTTPS too with a certificate per host from a
// TLS Secret; and the LoadBalancer services lbs (each in front of a).
func sitesApp(certs map[string][2][]byte, lbs ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: sites}\n")
	for _, site := range []string{"a", "b"} {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: sites}
spec:
  replicas: 1
  selector: {matchLabels: {site: %[1]s}}
  template:
    metadata: {labels: {site: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[2]s
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && echo "site %[1]s" > /www/index.html && exec httpd -f -p 8080 -h /www']
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: sites}
spec:
  selector: {site: %[1]s}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-tls, namespace: sites}
type: kubernetes.io/tls
data:
  tls.crt: %[3]s
  tls.key: %[4]s
`, site, ociarchive.BusyboxRef, base64.StdEncoding.EncodeToString(certs[site][0]), base64.StdEncoding.EncodeToString(certs[site][1]))
	}
	b.WriteString(`---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: sites, namespace: sites}
spec:
  tls:
  - {hosts: [a.example.test], secretName: a-tls}
  - {hosts: [b.example.test], secretName: b-tls}
  rules:
  - host: a.example.test
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {name: http}}}}]
  - host: b.example.test
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}]
`)
	for _, lb := range lbs {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: sites}
spec:
  type: LoadBalancer
  selector: {site: a}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, lb)
	}
	return b.String()
}

// TestIngressAndLoadBalancerOnContainerd: keelson up with its own
// containerd serves an Ingress of two hosts from the host, over HTTP by
// the Host header and over HTTPS by SNI with each host's certificate, and
// fills the Ingress's status with the node's address. A LoadBalancer
// service gets the one address of the pool, is reached on it, and when
// Git deletes it and adds another in the same commit, the address is freed
// and the other service gets it.
func TestIngressAndLoadBalancerOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	certs := map[string][2][]byte{"a": selfSigned(t, "a.example.test"), "b": selfSigned(t, "b.example.test")}
	commit(t, u.repo, "deploy/sites.yaml", sitesApp(certs, "lb-first"), "sites a and b, an ingress, a load balancer")
	first := headOf(t, u.repo)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pool := fmt.Sprintf("10.99.%d.7/32", os.Getpid()%250)
	lbIP := strings.TrimSuffix(pool, "/32")
	up := u.start(t, u.repo, "--path", "deploy", "--ingress-http", httpAddr, "--ingress-https", httpsAddr,
		"--cloud-provider", "local", "--lb-pool", pool)
	u.waitSync(t, up, first, metav1.ConditionTrue, keelsonv1alpha1.ReasonSucceeded)

	for _, site := range []string{"a", "b"} {
		host := site + ".example.test"
		want := "site " + site
		eventuallyWithin(t, ingressWait, "http://"+host+" through the ingress proxy", func() (string, bool) {
			got, err := getVia(httpAddr, "http://"+host+"/", nil)
			return fmt.Sprint(got, err), err == nil && got == want
		})
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certs[site][0])
		var peer string
		eventuallyWithin(t, ingressWait, "https://"+host+" through the ingress proxy", func() (string, bool) {
			got, err := getVia(httpsAddr, "https://"+host+"/", &tls.Config{RootCAs: pool, ServerName: host,
				VerifyConnection: func(cs tls.ConnectionState) error { peer = cs.PeerCertificates[0].Subject.CommonName; return nil }})
			return fmt.Sprint(got, err), err == nil && got == want
		})
		if peer != host {
			t.Errorf("https://%s: the proxy's certificate is %q", host, peer)
		}
	}
	c := u.client(t)
	eventuallyWithin(t, ingressWait, "the Ingress's status", func() (string, bool) {
		ing, err := c.NetworkingV1().Ingresses("sites").Get(t.Context(), "sites", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprint(ing.Status.LoadBalancer.Ingress), len(ing.Status.LoadBalancer.Ingress) == 1 && ing.Status.LoadBalancer.Ingress[0].IP != ""
	})

	waitLB := func(name string) {
		t.Helper()
		eventuallyWithin(t, ingressWait, name+" on "+lbIP, func() (string, bool) {
			svc, err := c.CoreV1().Services("sites").Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			cond := meta.FindStatusCondition(svc.Status.Conditions, servicenet.ConditionLoadBalancer)
			return fmt.Sprintf("status %v, condition %+v", svc.Status.LoadBalancer.Ingress, cond),
				len(svc.Status.LoadBalancer.Ingress) == 1 && svc.Status.LoadBalancer.Ingress[0].IP == lbIP &&
					cond != nil && cond.Status == metav1.ConditionTrue
		})
		eventuallyWithin(t, ingressWait, "http://"+lbIP+" answered by site a", func() (string, bool) {
			got, err := getVia(lbIP+":80", "http://"+lbIP+"/", nil)
			return fmt.Sprint(got, err), err == nil && got == "site a"
		})
	}
	waitLB("lb-first")

	// lb-first goes and lb-second comes in one commit: the pool's one
	// address passes from one to the other once the first is deleted.
	commit(t, u.repo, "deploy/sites.yaml", sitesApp(certs, "lb-second"), "another load balancer")
	second := headOf(t, u.repo)
	u.waitSync(t, up, second, metav1.ConditionTrue, keelsonv1alpha1.ReasonSucceeded)
	waitLB("lb-second")
	if _, err := c.CoreV1().Services("sites").Get(t.Context(), "lb-first", metav1.GetOptions{}); err == nil {
		t.Error("lb-first is still there")
	}
}

// getVia GETs url through a connection to addr (whatever the URL's host
// says), with TLS when cfg is set, and returns the trimmed body of a 200.
func getVia(addr, url string, cfg *tls.Config) (string, error) {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// selfSigned returns a PEM certificate and key for host.
func selfSigned(t *testing.T, host string) [2][]byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return [2][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}
}
