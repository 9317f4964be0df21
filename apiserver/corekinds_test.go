package apiserver_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

const coreKindsYAML = `apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: team-a}
subjects:
- {kind: User, name: jane}
- {kind: ServiceAccount, name: ci, namespace: team-a}
roleRef: {kind: Role, name: pod-reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:viewer"}
rules:
- nonResourceURLs: [/healthz]
  verbs: [get]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: team-a}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: team-a, labels: {tier: db}}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 5432}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: batch}
value: 1000
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: public}
spec:
  controller: example.com/ingress
  parameters: {apiGroup: example.com, kind: Params, name: lb}
`

// gitRepo makes a Git repository holding files on branch main, with the git
// binary, and returns its path.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	gitIn(t, "", "init", "-q", "-b", "main", repo)
	gitCommit(t, repo, files)
	return repo
}

func gitCommit(t *testing.T, repo string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "change")
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// syncRepo applies main of repo to the store as keelson server's sync does.
func syncRepo(t *testing.T, st *store.Store, repo string) *gitsync.Result {
	t.Helper()
	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := &gitsync.Syncer{Name: "default", Store: st, Schema: sch, Path: "deploy", Prune: true}
	src := gitsync.NewLocalGit(repo, "main")
	rev, err := src.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := src.Files(t.Context(), rev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply(t.Context(), rev, fsys)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

// TestCoreKindsFromGitThroughAPI: RBAC objects, a budget, a network policy,
// a priority class and an ingress class committed to Git are synced, found through discovery, read with
// client-go's typed clients as written (with Kubernetes' defaults), listed
// as kubectl's Table, watched as Git changes them, and refused to writers.
func TestCoreKindsFromGitThroughAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	repo := gitRepo(t, map[string]string{"deploy/access.yaml": coreKindsYAML})
	if res := syncRepo(t, ts.st, repo); res.Created != 8 {
		t.Fatalf("sync created %d objects, want 8: %+v", res.Created, res)
	}
	cs := ts.client(t, "admin-token")

	checkCoreDiscovery(t, ts)
	role, err := cs.RbacV1().Roles("team-a").Get(ctx, "pod-reader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(role.Rules[0].Verbs, []string{"get", "list"}) || role.Labels["keelson.dev/source"] != "default" {
		t.Errorf("role as stored: rules %+v, labels %v", role.Rules, role.Labels)
	}
	rb, err := cs.RbacV1().RoleBindings("team-a").Get(ctx, "read-pods", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName || rb.Subjects[1].APIGroup != "" {
		t.Errorf("binding without Kubernetes' defaults: %+v %+v", rb.RoleRef, rb.Subjects)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:viewer", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster role named with a colon: %v", err)
	}
	pdb, err := cs.PolicyV1().PodDisruptionBudgets("team-a").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app"] != "web" {
		t.Errorf("budget: %v %+v", err, pdb)
	}
	nps, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: "tier=db"})
	if err != nil || len(nps.Items) != 1 || !slices.Equal(nps.Items[0].Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Fatalf("network policies with tier=db: %v %+v", err, nps)
	}

	checkCoreTables(t, ts)

	checkWatchFollowsGit(t, ts, repo, role.ResourceVersion)

	_, err = cs.RbacV1().Roles("team-a").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, metav1.CreateOptions{})
	if !apierrors.IsMethodNotSupported(err) {
		t.Errorf("a person creating a Role: %v, want 405 (changes go through Git)", err)
	}
	_, err = ts.client(t, "node1-token").RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "root"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("a node creating a ClusterRoleBinding: %v, want forbidden", err)
	}
}

// checkWatchFollowsGit: a watch on Roles from rv sees the Role modified when
// a commit changes it and the sync applies the commit.
func checkWatchFollowsGit(t *testing.T, ts *testServer, repo, rv string) {
	t.Helper()
	w, err := ts.client(t, "admin-token").RbacV1().Roles("team-a").Watch(t.Context(), metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	gitCommit(t, repo, map[string]string{"deploy/access.yaml": replaceOnce(t, coreKindsYAML, "verbs: [get, list]", "verbs: [get, list, watch]")})
	if res := syncRepo(t, ts.st, repo); res.Updated != 1 {
		t.Fatalf("second sync updated %d objects, want the role: %+v", res.Updated, res)
	}
	select {
	case ev := <-w.ResultChan():
		r, ok := ev.Object.(*rbacv1.Role)
		if ev.Type != watch.Modified || !ok || len(r.Rules) == 0 || !slices.Contains(r.Rules[0].Verbs, "watch") {
			t.Errorf("watch event %s %T, want the role modified with verb watch", ev.Type, ev.Object)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event for the role changed in Git")
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

// checkCoreDiscovery: kubectl finds the kinds, their scope, verbs and short
// names through discovery, as it does before any get.
func checkCoreDiscovery(t *testing.T, ts *testServer) {
	t.Helper()
	lists, err := ts.client(t, "admin-token").Discovery().ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		namespaced bool
		short      string
	}{
		"rbac.authorization.k8s.io/v1 roles": {true, ""}, "rbac.authorization.k8s.io/v1 clusterroles": {false, ""},
		"rbac.authorization.k8s.io/v1 rolebindings": {true, ""}, "policy/v1 poddisruptionbudgets": {true, "pdb"},
		"networking.k8s.io/v1 networkpolicies": {true, "netpol"}, "scheduling.k8s.io/v1 priorityclasses": {false, "pc"},
		"flowcontrol.apiserver.k8s.io/v1 flowschemas": {false, ""}, "v1 podtemplates": {true, ""},
	}
	found := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			key := l.GroupVersion + " " + r.Name
			w, ok := want[key]
			if !ok {
				continue
			}
			found[key] = true
			if r.Namespaced != w.namespaced || (w.short != "" && !slices.Contains(r.ShortNames, w.short)) || !slices.Contains(r.Verbs, "watch") {
				t.Errorf("%s: namespaced %v, short names %v, verbs %v", key, r.Namespaced, r.ShortNames, r.Verbs)
			}
		}
	}
	for key := range want {
		if !found[key] {
			t.Errorf("discovery lacks %s", key)
		}
	}
}

// checkCoreTables: the columns kubectl prints for each kind, and their
// first cells.
func checkCoreTables(t *testing.T, ts *testServer) {
	t.Helper()
	cases := []struct {
		path    string
		columns []string
		cells   []any
	}{
		{"/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles", []string{"Name", "Created At"}, []any{"pod-reader"}},
		{"/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings", []string{"Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"},
			[]any{"read-pods", "Role/pod-reader", nil, "jane", "", "team-a/ci"}},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", []string{"Name", "Created At"}, []any{"system:viewer"}},
		{"/apis/policy/v1/poddisruptionbudgets", []string{"Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"},
			[]any{"web", "1", "N/A", float64(0)}},
		{"/apis/networking.k8s.io/v1/namespaces/team-a/networkpolicies", []string{"Name", "Pod-Selector", "Age"}, []any{"db", "app=db"}},
		{"/apis/scheduling.k8s.io/v1/priorityclasses", []string{"Name", "Value", "Global-Default", "Age", "PreemptionPolicy"},
			[]any{"batch", float64(1000), "false", nil, "PreemptLowerPriority"}},
		{"/apis/networking.k8s.io/v1/ingressclasses", []string{"Name", "Controller", "Parameters", "Age"},
			[]any{"public", "example.com/ingress", "Params.example.com/lb"}},
	}
	cs := ts.client(t, "admin-token")
	for _, c := range cases {
		b, err := cs.CoreV1().RESTClient().Get().AbsPath(c.path).SetHeader("Accept", tableAccept).DoRaw(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		var tbl metav1.Table
		if err := json.Unmarshal(b, &tbl); err != nil {
			t.Fatal(err)
		}
		if tbl.Kind != "Table" || len(tbl.Rows) != 1 {
			t.Errorf("%s: kind %q with %d rows: %s", c.path, tbl.Kind, len(tbl.Rows), b)
			continue
		}
		var cols []string
		for _, d := range tbl.ColumnDefinitions {
			cols = append(cols, d.Name)
		}
		if !slices.Equal(cols, c.columns) {
			t.Errorf("%s: columns %v, want %v", c.path, cols, c.columns)
		}
		for i, want := range c.cells {
			if got := tbl.Rows[0].Cells[i]; want != nil && got != want {
				t.Errorf("%s: cell %s = %#v, want %#v", c.path, cols[i], got, want)
			}
		}
	}
}
