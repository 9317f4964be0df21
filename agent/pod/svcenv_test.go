package pod

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type serviceList []*corev1.Service

func (l serviceList) ConfigMap(context.Context, string, string) (*corev1.ConfigMap, error) {
	return nil, ErrRefNotFound
}
func (l serviceList) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, ErrRefNotFound
}
func (l serviceList) ServiceAccount(context.Context, string, string) (*corev1.ServiceAccount, error) {
	return nil, ErrRefNotFound
}
func (l serviceList) Claim(context.Context, string, string) (*corev1.PersistentVolumeClaim, error) {
	return nil, ErrRefNotFound
}
func (l serviceList) Volume(context.Context, string) (*corev1.PersistentVolume, error) {
	return nil, ErrRefNotFound
}
func (l serviceList) ServiceAccountToken(context.Context, *corev1.Pod, []string, int64) (string, time.Time, error) {
	return "", time.Time{}, errors.New("no tokens in this test")
}
func (l serviceList) Services(_ context.Context, ns string) ([]*corev1.Service, error) {
	var out []*corev1.Service
	for _, s := range l {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out, nil
}

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func TestServiceEnv(t *testing.T) {
	services := serviceList{
		svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
		svc("shop", "cart-db", "10.43.9.9", corev1.ServicePort{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Port: 9187, Protocol: corev1.ProtocolTCP}),
		svc("shop", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("shop", "pending", "", corev1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.43.5.5", corev1.ServicePort{Port: 80}),
	}
	kubernetes := map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://10.43.0.1:443", "KUBERNETES_PORT_443_TCP": "tcp://10.43.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.43.0.1",
	}
	cartDB := map[string]string{
		"CART_DB_SERVICE_HOST": "10.43.9.9", "CART_DB_SERVICE_PORT": "5432", "CART_DB_SERVICE_PORT_PG": "5432",
		"CART_DB_PORT":          "tcp://10.43.9.9:5432",
		"CART_DB_PORT_5432_TCP": "tcp://10.43.9.9:5432", "CART_DB_PORT_5432_TCP_PROTO": "tcp", "CART_DB_PORT_5432_TCP_PORT": "5432", "CART_DB_PORT_5432_TCP_ADDR": "10.43.9.9",
		"CART_DB_PORT_9187_TCP": "tcp://10.43.9.9:9187", "CART_DB_PORT_9187_TCP_PROTO": "tcp", "CART_DB_PORT_9187_TCP_PORT": "9187", "CART_DB_PORT_9187_TCP_ADDR": "10.43.9.9",
	}
	both := maps.Clone(kubernetes)
	maps.Copy(both, cartDB)
	cases := []struct {
		name  string
		ns    string
		links *bool
		want  map[string]string
	}{
		{"links on", "shop", nil, both},
		{"links off keeps the kubernetes service", "shop", ptr.To(false), kubernetes},
		{"default namespace", "default", nil, kubernetes},
		{"default namespace, links off", "default", ptr.To(false), kubernetes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runner{cfg: Config{Lookup: services}}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: "p"}, Spec: corev1.PodSpec{EnableServiceLinks: tc.links}}
			got, err := r.serviceEnv(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("environment:\n%v\nwant:\n%v", got, tc.want)
			}
		})
	}
}

func TestServiceEnvOwnNamespaceWins(t *testing.T) {
	services := serviceList{
		svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Port: 443}),
		svc("shop", "kubernetes", "10.43.3.3", corev1.ServicePort{Port: 8443}),
	}
	r := &Runner{cfg: Config{Lookup: services}}
	got, err := r.serviceEnv(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	if got["KUBERNETES_SERVICE_HOST"] != "10.43.3.3" || got["KUBERNETES_SERVICE_PORT"] != "8443" {
		t.Errorf("the pod's own namespace's service should win: %v", got)
	}
}
