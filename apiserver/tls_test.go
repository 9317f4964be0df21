package apiserver_test

import (
	"crypto/x509"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/apiserver"
)

func TestTLSWithGeneratedCAAndKubeconfig(t *testing.T) {
	ts := newTestServer(t)
	files := apiserver.TLSFilesIn(t.TempDir())
	tlsCfg, err := apiserver.EnsureTLS(files, []string{"keelson.example", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(ts.srv.Handler())
	hs.TLS = tlsCfg
	hs.StartTLS()
	defer hs.Close()

	caPEM, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(tlsCfg.Certificates[0].Certificate[0])
	if !strings.Contains(strings.Join(leaf.DNSNames, ","), "keelson.example") || len(leaf.IPAddresses) < 3 {
		t.Fatalf("serving certificate names %v %v, want localhost, keelson.example and the IPs", leaf.DNSNames, leaf.IPAddresses)
	}
	kc, err := apiserver.Kubeconfig(hs.URL, caPEM, "admin", "admin-token")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatalf("list over TLS with the kubeconfig: %v", err)
	}
	// A second start keeps the CA and the certificate.
	again, err := apiserver.EnsureTLS(files, []string{"keelson.example", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Certificates[0].Certificate[0]) != string(tlsCfg.Certificates[0].Certificate[0]) {
		t.Fatal("the serving certificate changed on restart with the same names")
	}
	// A client that trusts another CA is refused.
	other := apiserver.TLSFilesIn(t.TempDir())
	if _, err := apiserver.EnsureTLS(other, nil); err != nil {
		t.Fatal(err)
	}
	otherCA, _ := os.ReadFile(other.CACert)
	kc2, _ := apiserver.Kubeconfig(hs.URL, otherCA, "admin", "admin-token")
	rc2, _ := clientcmd.RESTConfigFromKubeConfig(kc2)
	cs2, _ := kubernetes.NewForConfig(rc2)
	if _, err := cs2.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{}); err == nil {
		t.Fatal("a client trusting another CA got through")
	}
}
