package reconciler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestIngressStatus: keelson's IngressClass is made (and made again when
// deleted); the Ingresses keelson serves — no class, keelson's, a class of
// keelson's controller from Git — get the addresses of the Ready nodes
// whose ingress proxy listens, ExternalIP first, and follow the nodes; an
// Ingress of another controller's class is left alone.
func TestIngressStatus(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	startControllers(t, st, testOptions())

	waitClass := func() *networkingv1.IngressClass {
		t.Helper()
		c := &networkingv1.IngressClass{}
		eventually(t, "the keelson IngressClass", func() (bool, string) {
			err := st.Get(ctx, "", ingressclass.Name, c)
			return err == nil, fmt.Sprint(err)
		})
		return c
	}
	c := waitClass()
	if c.Spec.Controller != ingressclass.Controller || c.Annotations[ingressclass.AnnotationDefault] != "true" {
		t.Errorf("class %+v, want controller %s and the default-class annotation", c, ingressclass.Controller)
	}
	if err := st.Delete(ctx, store.MustResource("ingressclasses.networking.k8s.io"), "", ingressclass.Name, nil); err != nil {
		t.Fatal(err)
	}
	if again := waitClass(); again.UID == c.UID {
		t.Error("the deleted class was not made again")
	}

	node := func(name, internal, external string, ready, proxy bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if proxy {
			n.Annotations = map[string]string{ingressclass.AnnotationNodeProxy: "http=:80,https=:443"}
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: internal}}
		if external != "" {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: external})
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}
		return n
	}
	for _, o := range []store.Object{
		node("a", "192.168.1.11", "", true, true),
		node("b", "192.168.1.12", "203.0.113.12", true, true),
		node("c", "192.168.1.13", "", true, false), // no ingress proxy
		node("d", "192.168.1.14", "", false, true), // not Ready
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: networkingv1.IngressClassSpec{Controller: ingressclass.Controller}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
	} {
		if err := st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ing := func(name string, class *string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: networkingv1.IngressSpec{IngressClassName: class, DefaultBackend: &networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	}
	for _, o := range []*networkingv1.Ingress{ing("default", nil), ing("keelson", ptr.To("keelson")), ing("internal", ptr.To("internal")), ing("nginx", ptr.To("nginx"))} {
		if err := st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	status := func(name string) []string {
		cur := &networkingv1.Ingress{}
		if err := st.Get(ctx, "default", name, cur); err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, in := range cur.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		return ips
	}
	waitStatus := func(want string) {
		t.Helper()
		eventually(t, "the served Ingresses' status "+want, func() (bool, string) {
			got := fmt.Sprint(status("default"), status("keelson"), status("internal"))
			return got == fmt.Sprintf("%s %s %s", want, want, want), got
		})
	}
	waitStatus("[192.168.1.11 203.0.113.12]")

	// Node a goes NotReady: its address leaves; d comes back: its joins.
	set := func(name string, ready bool) {
		t.Helper()
		n := &corev1.Node{}
		if err := st.Get(ctx, "", name, n); err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions[0].Status = map[bool]corev1.ConditionStatus{true: corev1.ConditionTrue, false: corev1.ConditionFalse}[ready]
		if err := st.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	set("a", false)
	set("d", true)
	waitStatus("[192.168.1.14 203.0.113.12]")
	// The queue has long passed the nginx Ingress's creation and the
	// nodes' changes.
	if got := status("nginx"); got != nil {
		t.Errorf("an Ingress of another controller's class got status %v", got)
	}
}
