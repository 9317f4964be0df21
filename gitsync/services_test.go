package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// serviceYAML is a Service whose spec lines start at line 7.
func serviceYAML(ns, name, spec string) string {
	return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nspec:\n" + spec
}

func mustCIDR(t testing.TB, s string) servicenet.CIDR {
	t.Helper()
	c, err := servicenet.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPorts(t testing.TB, s string) servicenet.PortRange {
	t.Helper()
	r, err := servicenet.ParsePortRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// serviceSyncer is a Syncer with the default service ranges.
func serviceSyncer(t *testing.T) *Syncer {
	s := newSyncer(t, "apps")
	s.ServiceCIDR = mustCIDR(t, servicenet.DefaultServiceCIDR)
	s.NodePorts = mustPorts(t, servicenet.DefaultNodePortRange)
	return s
}

// reserveIP creates the IPAddress of ip for service ns/name, as the
// allocator does.
func reserveIP(t *testing.T, st *store.Store, ip, ns, name string) {
	t.Helper()
	o := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: ip, Labels: map[string]string{servicenet.LabelIPAddressManagedBy: servicenet.IPAddressManagedBy}},
		Spec:       networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: ns, Name: name}},
	}
	if err := st.Create(t.Context(), o); err != nil {
		t.Fatalf("reserve %s: %v", ip, err)
	}
}

// allocate does what the allocator does to a synced Service: reserves ip,
// fills the cluster IP fields and the node ports of the ports named in
// nodePorts, and records its condition.
func allocate(t *testing.T, st *store.Store, ns, name, ip string, nodePorts map[string]int32) *corev1.Service {
	t.Helper()
	reserveIP(t, st, ip, ns, name)
	svc := &corev1.Service{}
	if err := st.Get(t.Context(), ns, name, svc); err != nil {
		t.Fatal(err)
	}
	single := corev1.IPFamilyPolicySingleStack
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
	svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = []corev1.IPFamily{corev1.IPv4Protocol}, &single
	for i, p := range svc.Spec.Ports {
		if np, ok := nodePorts[p.Name]; ok {
			svc.Spec.Ports[i].NodePort = np
		}
	}
	if err := st.Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	apimeta.SetStatusCondition(&svc.Status.Conditions, metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionTrue, Reason: "Allocated"})
	if err := st.UpdateStatus(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

func getService(t *testing.T, st *store.Store, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	if err := st.Get(t.Context(), ns, name, svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

func nodePorts(svc *corev1.Service) map[string]int32 {
	out := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		out[p.Name] = p.NodePort
	}
	return out
}

// TestServiceAllocatedFieldsKept: what the allocator fills stays filled, a
// sync after it writes nothing and reports no drift, a later change in Git
// keeps the allocation, and a type without node ports gives them back.
func TestServiceAllocatedFieldsKept(t *testing.T) {
	s := serviceSyncer(t)
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	ports := "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n  - {name: metrics, port: 9090, nodePort: 30999}\n"
	r.commit(map[string]string{"svc.yaml": serviceYAML("default", "web", "  type: NodePort\n  selector: {app: web}\n"+ports)})
	wantCounts(t, mustApply(t, s, src), 1, 0, 0, 0)
	rv := allocate(t, s.Store, "default", "web", "10.43.0.20", map[string]int32{"http": 30100}).ResourceVersion

	t.Run("same revision writes nothing", func(t *testing.T) {
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 0, 0, 1)
		if got := getService(t, s.Store, "default", "web").ResourceVersion; got != rv || res.DriftCorrected != 0 {
			t.Errorf("resourceVersion %s -> %s, %d drift corrected", rv, got, res.DriftCorrected)
		}
	})
	t.Run("a restarted sync writes nothing", func(t *testing.T) {
		fresh := &Syncer{Name: s.Name, Store: s.Store, Schema: s.Schema, Prune: true, ServiceCIDR: s.ServiceCIDR, NodePorts: s.NodePorts}
		wantCounts(t, mustApply(t, fresh, src), 0, 0, 0, 1)
		if got := getService(t, s.Store, "default", "web").ResourceVersion; got != rv {
			t.Errorf("resourceVersion %s -> %s", rv, got)
		}
	})
	steps := []struct {
		name, spec string
		want       map[string]int32
	}{
		{"a selector change keeps the allocation", "  type: NodePort\n  selector: {app: web2}\n" + ports,
			map[string]int32{"http": 30100, "metrics": 30999}},
		{"reordered ports keep theirs by name", "  type: NodePort\n  selector: {app: web2}\n  ports:\n  - {name: metrics, port: 9090, nodePort: 30999}\n  - {name: http, port: 80, targetPort: 8080}\n",
			map[string]int32{"http": 30100, "metrics": 30999}},
		{"a renamed port keeps its own by number", "  type: NodePort\n  selector: {app: web2}\n  ports:\n  - {name: web, port: 80, targetPort: 8080}\n  - {name: metrics, port: 9090, nodePort: 30999}\n",
			map[string]int32{"web": 30100, "metrics": 30999}},
		{"type ClusterIP gives the node ports back", "  selector: {app: web2}\n  ports:\n  - {name: web, port: 80, targetPort: 8080}\n  - {name: metrics, port: 9090}\n",
			map[string]int32{"web": 0, "metrics": 0}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			r.commit(map[string]string{"svc.yaml": serviceYAML("default", "web", step.spec)})
			wantCounts(t, mustApply(t, s, src), 0, 1, 0, 0)
			svc := getService(t, s.Store, "default", "web")
			if got := nodePorts(svc); fmt.Sprint(got) != fmt.Sprint(step.want) {
				t.Errorf("node ports %v, want %v", got, step.want)
			}
			if svc.Spec.ClusterIP != "10.43.0.20" || len(svc.Spec.ClusterIPs) != 1 || len(svc.Spec.IPFamilies) != 1 || svc.Spec.IPFamilyPolicy == nil {
				t.Errorf("cluster IP fields lost: %+v", svc.Spec)
			}
			if c := apimeta.FindStatusCondition(svc.Status.Conditions, servicenet.ConditionIPAllocated); c == nil {
				t.Errorf("the allocator's condition is gone: %+v", svc.Status)
			}
			// And the sync after it writes nothing.
			wantCounts(t, mustApply(t, s, src), 0, 0, 0, 1)
		})
	}
	t.Run("an external name gives the cluster IP back", func(t *testing.T) {
		r.commit(map[string]string{"svc.yaml": serviceYAML("default", "web", "  type: ExternalName\n  externalName: db.example.com\n")})
		wantCounts(t, mustApply(t, s, src), 0, 1, 0, 0)
		if svc := getService(t, s.Store, "default", "web"); svc.Spec.ClusterIP != "" || len(svc.Spec.ClusterIPs)+len(svc.Spec.IPFamilies) != 0 {
			t.Errorf("an ExternalName service keeps %q %v %v", svc.Spec.ClusterIP, svc.Spec.ClusterIPs, svc.Spec.IPFamilies)
		}
	})
}

// TestServiceClusterIPCannotChange: a cluster IP in Git that differs from
// the one allocated is refused at its line, and nothing is written.
func TestServiceClusterIPCannotChange(t *testing.T) {
	s := serviceSyncer(t)
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"svc.yaml": serviceYAML("shop", "web", "  selector: {app: web}\n  ports: [{port: 80}]\n")})
	mustApply(t, s, src)
	rv := allocate(t, s.Store, "shop", "web", "10.43.0.20", nil).ResourceVersion
	for _, tc := range []struct{ name, ip, want string }{
		{"another address", "10.43.0.30", "svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.43.0.30: the service holds cluster IP 10.43.0.20, which cannot change"},
		{"headless", "None", "svc.yaml:7:14: Service shop/web: spec.clusterIP: None: the service holds cluster IP 10.43.0.20 and cannot become headless"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.commit(map[string]string{"svc.yaml": serviceYAML("shop", "web", "  clusterIP: "+tc.ip+"\n  selector: {app: web}\n  ports: [{port: 80}]\n"), "cm.yaml": configMap("other", "x")})
			res, err := syncNow(t, s, src)
			if !errors.Is(err, ErrInvalid) || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0].Error(), tc.want) {
				t.Fatalf("err %v, errors %q; want one starting %q", err, res.Errors, tc.want)
			}
			if got := getService(t, s.Store, "shop", "web").ResourceVersion; got != rv {
				t.Errorf("the service was written: resourceVersion %s -> %s", rv, got)
			}
			if err := s.Store.Get(t.Context(), "default", "other", &corev1.ConfigMap{}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the ConfigMap of the refused commit: %v", err)
			}
		})
	}
	r.commit(map[string]string{"svc.yaml": serviceYAML("shop", "web", "  clusterIP: 10.43.0.20\n  selector: {app: web}\n  ports: [{port: 80}]\n"), "cm.yaml": ""})
	wantCounts(t, mustApply(t, s, src), 0, 0, 0, 1)
}

// TestServiceControlPlaneObjects: the kubernetes service the control plane
// made cannot be taken over from Git.
func TestServiceControlPlaneObjects(t *testing.T) {
	s := serviceSyncer(t)
	api := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes", Labels: map[string]string{keelsonv1alpha1.LabelControlPlane: "true"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.1", Ports: []corev1.ServicePort{{Port: 443}}}}
	if err := s.Store.Create(t.Context(), api); err != nil {
		t.Fatal(err)
	}
	r := newRepo(t)
	r.commit(map[string]string{"svc.yaml": serviceYAML("default", "kubernetes", "  ports: [{port: 443}]\n")})
	res, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
	if !errors.Is(err, ErrInvalid) || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "svc.yaml:1: Service default/kubernetes: services default/kubernetes is made by keelson's control plane") {
		t.Fatalf("err %v, errors %q", err, res.Errors)
	}
	if got := getService(t, s.Store, "default", "kubernetes"); got.Labels[LabelSource] != "" || got.ResourceVersion != api.ResourceVersion {
		t.Errorf("the control plane's service was taken: %+v", got.ObjectMeta)
	}
}

// TestServiceChecksOff: a Syncer without the ranges checks no address or
// port (a server built before services had them).
func TestServiceChecksOff(t *testing.T) {
	s := newSyncer(t, "apps")
	r := newRepo(t)
	r.commit(map[string]string{"svc.yaml": serviceYAML("shop", "web", "  type: NodePort\n  clusterIP: 10.99.0.1\n  ports: [{port: 80, nodePort: 40000}]\n")})
	wantCounts(t, mustApply(t, s, NewLocalGit(r.dir, "main")), 1, 0, 0, 0)
}

// TestServiceChecksReadNothing: a revision that changes no Service reads
// nothing more of the store (the Syncer here has none: a read would fail).
func TestServiceChecksReadNothing(t *testing.T) {
	s := &Syncer{ServiceCIDR: mustCIDR(t, "10.43.0.0/16"), NodePorts: mustPorts(t, "30000-32767")}
	svcRes, err := store.ResourceByName(servicesResource)
	if err != nil {
		t.Fatal(err)
	}
	cmRes, err := store.ResourceByName("configmaps")
	if err != nil {
		t.Fatal(err)
	}
	held := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20", Type: corev1.ServiceTypeNodePort,
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	changes := []*Change{
		{Action: Unchanged, res: svcRes, cur: held},
		{Action: Create, res: cmRes, obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "c"}}},
	}
	problems, err := s.checkServices(t.Context(), nil, changes)
	if err != nil || len(problems) != 0 {
		t.Fatalf("problems %v, err %v", problems, err)
	}
}

// BenchmarkCheckServicesNoService measures what the service checks add to
// a sync of 10,000 objects that changes no Service: a look at each change.
func BenchmarkCheckServicesNoService(b *testing.B) {
	s := &Syncer{ServiceCIDR: mustCIDR(b, "10.43.0.0/16"), NodePorts: mustPorts(b, "30000-32767")}
	changes := make([]*Change, 10_000)
	for i := range changes {
		name := "deployments.apps"
		if i%10 != 0 {
			name = "configmaps"
		}
		r, err := store.ResourceByName(name)
		if err != nil {
			b.Fatal(err)
		}
		changes[i] = &Change{Action: Unchanged, res: r}
	}
	for b.Loop() {
		if problems, err := s.checkServices(b.Context(), nil, changes); err != nil || len(problems) > 0 {
			b.Fatal(problems, err)
		}
	}
}
