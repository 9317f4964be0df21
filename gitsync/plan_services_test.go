package gitsync

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// storeCluster is a Cluster read straight from the store, as the API
// serves it.
type storeCluster struct{ st *store.Store }

func (c storeCluster) List(ctx context.Context, r store.Resource) ([]store.Object, error) {
	l, err := c.st.List(ctx, r, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (storeCluster) String() string { return "etcd" }

func effectsOf(t *testing.T, p *Plan, title string) string {
	t.Helper()
	return strings.Join(findObject(t, p, title).Effects, "; ")
}

func riskMessages(p *Plan, code, object string) []string {
	var out []string
	for _, r := range p.Risks {
		if r.Code == code && r.Object == object {
			out = append(out, r.Message)
		}
	}
	return out
}

// TestPlanServicesGit: between two commits, what each new Service gets and
// selects among the revision's pod templates (also those of files the
// change did not touch), its risks, and the allocation problems a sync
// would refuse.
func TestPlanServicesGit(t *testing.T) {
	base := map[string]string{"deploy/ns.yaml": namespace("shop"), "deploy/web.yaml": webV1}
	head := map[string]string{
		"deploy/web-svc.yaml": serviceYAML("shop", "web", "  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n"),
		"deploy/lonely.yaml":  serviceYAML("shop", "lonely", "  selector: {app: ghost}\n  ports: [{port: 80}]\n"),
		"deploy/db.yaml":      serviceYAML("shop", "db", "  clusterIP: 10.43.0.20\n  selector: {app: web}\n  ports: [{port: 5432}]\n"),
		"deploy/dup.yaml":     serviceYAML("shop", "dup", "  clusterIP: 10.43.0.20\n  selector: {app: web}\n  ports: [{port: 5432}]\n"),
		"deploy/out.yaml":     serviceYAML("shop", "out", "  clusterIP: 10.99.0.1\n  selector: {app: web}\n  ports: [{port: 80}]\n"),
		"deploy/peers.yaml":   serviceYAML("shop", "peers", "  clusterIP: None\n  selector: {app: web}\n  ports: [{port: 80}]\n"),
		"deploy/ext.yaml":     serviceYAML("shop", "ext", "  type: ExternalName\n  externalName: db.example.com\n"),
		"deploy/np.yaml":      serviceYAML("shop", "np", "  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80, nodePort: 30080}]\n"),
		"deploy/np2.yaml":     serviceYAML("shop", "np2", "  type: NodePort\n  selector: {app: web}\n  ports: [{name: a, port: 80}, {name: b, port: 81}]\n"),
	}
	p := planRepo(t, base, head)
	for title, want := range map[string]string{
		"Service shop/web":    "gets a cluster IP from 10.43.0.0/16; selects the pods of deployment shop/web",
		"Service shop/lonely": "gets a cluster IP from 10.43.0.0/16",
		"Service shop/db":     "gets cluster IP 10.43.0.20; selects the pods of deployment shop/web",
		"Service shop/peers":  "headless: DNS answers with the selected pods' addresses; selects the pods of deployment shop/web",
		"Service shop/ext":    "external name db.example.com",
		"Service shop/np":     "gets a cluster IP from 10.43.0.0/16; opens node port 30080 on every node; selects the pods of deployment shop/web",
		"Service shop/np2":    "gets a cluster IP from 10.43.0.0/16; gets a node port from 30000-32767 for port a; gets a node port from 30000-32767 for port b; selects the pods of deployment shop/web",
	} {
		if got := effectsOf(t, p, title); got != want {
			t.Errorf("%s:\n got  %q\n want %q", title, got, want)
		}
	}
	if got := riskMessages(p, "selector-selects-nothing", "Service shop/lonely"); len(got) != 1 ||
		got[0] != "selector app=ghost selects no pod template of this revision in namespace shop: the service would have no endpoints" {
		t.Errorf("lonely: %q", got)
	}
	if got := riskMessages(p, "target-port-undefined", "Service shop/web"); len(got) != 1 || !strings.Contains(got[0], `port http: targetPort "http" is a port name that no selected pod defines (deployment shop/web)`) {
		t.Errorf("web: %q", got)
	}
	for _, title := range []string{"Service shop/db", "Service shop/np", "Service shop/peers"} {
		if got := riskMessages(p, "selector-selects-nothing", title); len(got) > 0 {
			t.Errorf("%s flagged: %q", title, got)
		}
	}
	wantErrs := []string{
		"deploy/dup.yaml:7:14: Service shop/dup: spec.clusterIP: 10.43.0.20 is asked for by service shop/db too (deploy/db.yaml:1)",
		"deploy/out.yaml:7:14: Service shop/out: spec.clusterIP: 10.99.0.1 is outside the service CIDR 10.43.0.0/16",
	}
	if len(p.Errors) != len(wantErrs) || !p.Invalid() {
		t.Fatalf("errors %q, want %q", p.Errors, wantErrs)
	}
	for i, want := range wantErrs {
		if got := p.Errors[i].Error(); !strings.HasPrefix(got, want) {
			t.Errorf("error %d:\n got  %s\n want %s…", i, got, want)
		}
	}
	var text, js bytes.Buffer
	if err := p.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("text output:\n%s", text.String())
	for _, want := range []string{
		"+ Service shop/db  (deploy/db.yaml:1)\n    gets cluster IP 10.43.0.20\n",
		"WARNING Service shop/lonely: selector app=ghost selects no pod template",
		"  deploy/out.yaml:7:14: Service shop/out: spec.clusterIP: 10.99.0.1 is outside",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Risks  []Risk `json:"risks"`
		Errors []struct {
			File, Path string
			Line       int
		} `json:"errors"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, r := range decoded.Risks {
		codes[r.Code] = true
	}
	if !codes["selector-selects-nothing"] || !codes["target-port-undefined"] || len(decoded.Errors) != 2 ||
		decoded.Errors[1].File != "deploy/out.yaml" || decoded.Errors[1].Line != 7 || decoded.Errors[1].Path != "spec.clusterIP" {
		t.Errorf("JSON risks %+v, errors %+v", decoded.Risks, decoded.Errors)
	}
}

// TestPlanServiceChanges: a Service that changes says what it gets, gives
// back and selects now; a selector and ports left as they were select
// nothing again.
func TestPlanServiceChanges(t *testing.T) {
	base := map[string]string{
		"deploy/web.yaml": webV1,
		"deploy/a.yaml":   serviceYAML("shop", "a", "  selector: {app: old}\n  ports: [{port: 80}]\n"),
		"deploy/b.yaml":   serviceYAML("shop", "b", "  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80, nodePort: 30080}]\n"),
		"deploy/c.yaml":   serviceYAML("shop", "c", "  selector: {app: gone}\n  ports: [{port: 80}]\n"),
	}
	head := map[string]string{
		"deploy/a.yaml": serviceYAML("shop", "a", "  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80}]\n"),
		"deploy/b.yaml": serviceYAML("shop", "b", "  type: ExternalName\n  externalName: b.example.com\n"),
		"deploy/c.yaml": serviceYAML("shop", "c", "  selector: {app: gone}\n  ports: [{port: 80}]\n  sessionAffinity: ClientIP\n"),
	}
	p := planRepo(t, base, head)
	for title, want := range map[string]string{
		"Service shop/a": "type ClusterIP → NodePort; gets a node port from 30000-32767; selects the pods of deployment shop/web",
		"Service shop/b": "type NodePort → ExternalName; external name b.example.com; closes node port 30080",
		"Service shop/c": "",
	} {
		if got := effectsOf(t, p, title); got != want {
			t.Errorf("%s:\n got  %q\n want %q", title, got, want)
		}
	}
	if len(p.Risks) != 0 || len(p.Errors) != 0 {
		t.Errorf("risks %+v, errors %q", p.Risks, p.Errors)
	}
}

// TestPlanServicesCluster: against a cluster, a new Service names the pods
// it selects now and the cluster's CIDR it gets an address from; an
// allocated service whose file did not change is unchanged; an address held
// in the cluster is an error.
func TestPlanServicesCluster(t *testing.T) {
	ctx := t.Context()
	s := serviceSyncer(t)
	s.ServiceCIDR = mustCIDR(t, "10.96.0.0/16")
	st := s.Store
	r := newRepo(t)
	main := r.commit(map[string]string{"deploy/ns.yaml": namespace("shop"), "deploy/web.yaml": webV1,
		"deploy/web-svc.yaml": serviceYAML("shop", "web", "  type: NodePort\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n")})
	r.setBranch("main", main)
	s.Path = "deploy"
	mustApply(t, s, NewLocalGit(r.dir, "main"))
	allocate(t, st, "shop", "web", "10.96.0.20", map[string]int32{"http": 30100})
	reserveIP(t, st, "10.96.0.30", "shop", "cart")
	cidrObj := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16"}}}
	if err := st.Create(ctx, cidrObj); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"web-2", "web-1", "web-3", "other"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/web:1.4"}}}}
		if name == "other" {
			pod.Labels["app"] = "other"
		}
		if err := st.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionStatus(map[bool]string{true: "True", false: "False"}[i < 2])}}
		if err := st.UpdateStatus(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	pr := r.commit(map[string]string{
		"deploy/front.yaml": serviceYAML("shop", "front", "  selector: {app: web}\n  ports: [{port: 80}]\n"),
		"deploy/taken.yaml": serviceYAML("shop", "taken", "  clusterIP: 10.96.0.30\n  selector: {app: web}\n  ports: [{port: 80}]\n"),
		"deploy/ghost.yaml": serviceYAML("shop", "ghost", "  selector: {app: ghost}\n  ports: [{port: 80}]\n"),
	})
	r.setBranch("pr", pr)
	p, err := PlanCluster(ctx, r.dir, "pr", storeCluster{st}, PlanOptions{Schema: testSchema(t), Name: "apps", Path: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := effectsOf(t, p, "Service shop/front"), "gets a cluster IP from 10.96.0.0/16; selects 3 pods now, 2 ready: web-1, web-2, web-3; selects the pods of deployment shop/web"; got != want {
		t.Errorf("front:\n got  %q\n want %q", got, want)
	}
	if p.Created != 3 || p.Changed != 0 || p.Unchanged != 3 {
		t.Errorf("created %d changed %d unchanged %d, want 3 0 3 (the allocated service unchanged): %+v", p.Created, p.Changed, p.Unchanged, p.Objects)
	}
	if got := riskMessages(p, "selector-selects-nothing", "Service shop/ghost"); len(got) != 1 ||
		got[0] != "selector app=ghost selects no pod in namespace shop now, and no pod template of this revision: the service would have no endpoints" {
		t.Errorf("ghost: %q", got)
	}
	want := "deploy/taken.yaml:7:14: Service shop/taken: spec.clusterIP: 10.96.0.30 is held by service shop/cart"
	if len(p.Errors) != 1 || p.Errors[0].Error() != want {
		t.Errorf("errors %q, want %q", p.Errors, want)
	}
}

// TestPlanServiceClusterIPImmutable: a headless service cannot get an
// address, nor one with an address lose it, except by becoming or leaving
// an external name.
func TestPlanServiceClusterIPImmutable(t *testing.T) {
	const (
		headless = "  clusterIP: None\n  selector: {app: web}\n  ports: [{port: 80}]\n"
		plain    = "  selector: {app: web}\n  ports: [{port: 80}]\n"
		fixed    = "  clusterIP: 10.43.0.20\n  selector: {app: web}\n  ports: [{port: 80}]\n"
		external = "  type: ExternalName\n  externalName: web.example.com\n"
	)
	cases := []struct {
		name, old, head string
		refused         bool
	}{
		{"headless to an address", headless, plain, true},
		{"an address to headless", fixed, headless, true},
		{"an address to another", fixed, "  clusterIP: 10.43.0.21\n  selector: {app: web}\n  ports: [{port: 80}]\n", true},
		{"an address to an external name", fixed, external, false},
		{"an external name to an address", external, fixed, false},
		{"no address written to one written", plain, fixed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRepo(t, map[string]string{"deploy/web.yaml": webV1, "deploy/svc.yaml": serviceYAML("shop", "web", tc.old)},
				map[string]string{"deploy/svc.yaml": serviceYAML("shop", "web", tc.head)})
			if got := hasRisk(p, RiskError, "immutable-field", "Service shop/web"); got != tc.refused {
				t.Errorf("immutable-field risk: %t, want %t: %+v", got, tc.refused, p.Risks)
			}
		})
	}
}

// TestSelectionDefines: a named target port is found where the EndpointSlice
// controller resolves it, so that a plan flags target-port-undefined only
// when the service would really get no endpoints for the port.
func TestSelectionDefines(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	port := func(name string, proto corev1.Protocol) []corev1.ContainerPort {
		return []corev1.ContainerPort{{Name: name, ContainerPort: 8080, Protocol: proto}}
	}
	cases := []struct {
		name  string
		spec  corev1.PodSpec
		proto corev1.Protocol
		want  bool
	}{
		{"a container's port", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: port("http", corev1.ProtocolTCP)}}}, corev1.ProtocolTCP, true},
		{"a container's port of no protocol is TCP", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: port("http", "")}}}, corev1.ProtocolTCP, true},
		{"another protocol", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: port("http", corev1.ProtocolUDP)}}}, corev1.ProtocolTCP, false},
		{"a sidecar's port", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}},
			InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: &always, Ports: port("http", corev1.ProtocolTCP)}}}, corev1.ProtocolTCP, true},
		{"an init container that ends", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}},
			InitContainers: []corev1.Container{{Name: "setup", Ports: port("http", corev1.ProtocolTCP)}}}, corev1.ProtocolTCP, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fromTemplate := &selection{sources: []podSource{{what: "deployment shop/web", spec: &tc.spec}}}
			fromCluster := &selection{pods: []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: tc.spec}}}
			for what, s := range map[string]*selection{"pod template": fromTemplate, "pod": fromCluster} {
				if got := s.defines("http", tc.proto); got != tc.want {
					t.Errorf("%s: defines(http, %s) = %v, want %v", what, tc.proto, got, tc.want)
				}
			}
		})
	}
}
