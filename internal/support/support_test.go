package support_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/internal/support"
	kschema "github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// actedOn names, for every kind Git may declare that is not on the list,
// what acts on it. A kind added to the schema fails TestEveryKindDecided
// until it is put here or on the list.
var actedOn = map[schema.GroupKind]string{
	{Kind: "Namespace"}:             "reconciler: NamespaceController",
	{Kind: "Pod"}:                   "reconciler: Scheduler; agent: pod workers",
	{Kind: "ReplicationController"}: "reconciler: ReplicationControllerController",
	{Kind: "Service"}:               "reconciler: ServiceIPController, EndpointSliceController; agent: node proxy; clusterdns",
	{Kind: "Endpoints"}:             "reconciler: EndpointSliceMirroringController",
	{Kind: "ConfigMap"}:             "agent: volumes and environment",
	{Kind: "Secret"}:                "agent: volumes and environment",
	{Kind: "ResourceQuota"}:         "admission: every write; gitsync: the revision's check; reconciler: QuotaController",
	{Kind: "LimitRange"}:            "admission: pods and claims created; gitsync: the revision's check",
	{Kind: "ServiceAccount"}:        "admission: pods' token volumes; apiserver: tokens; agent: image pull secrets",
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               "apiserver: RBAC authorization; gitsync: plan's access changes",
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        "apiserver: RBAC authorization; gitsync: plan's access changes",
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        "apiserver: RBAC authorization; gitsync: plan's access changes",
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: "apiserver: RBAC authorization; gitsync: plan's access changes",
	{Group: "policy", Kind: "PodDisruptionBudget"}:                   "reconciler: DisruptionController (status), NodePolicyController (drains)",
	{Group: "apps", Kind: "Deployment"}:                              "reconciler: DeploymentController",
	{Group: "apps", Kind: "ReplicaSet"}:                              "reconciler: ReplicaSetController",
	{Group: "batch", Kind: "Job"}:                                    "reconciler: JobController",
	{Group: "batch", Kind: "CronJob"}:                                "reconciler: CronJobController",
	{Group: "apps", Kind: "DaemonSet"}:                               "reconciler: DaemonSetController",
	{Group: "apps", Kind: "StatefulSet"}:                             "reconciler: StatefulSetController",
	{Kind: "PersistentVolume"}:                                       "reconciler: PVBinder; agent: pod volumes",
	{Kind: "PersistentVolumeClaim"}:                                  "reconciler: PVBinder, PVCProtection; agent: local-path, pod volumes",
	{Group: "keelson.dev", Kind: "NodePolicy"}:                       "reconciler: NodePolicyController",
	{Group: "keelson.dev", Kind: "HelmChart"}:                        "gitsync/render: rendered into the objects synced beside it",
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:          "reconciler: HPAController; gitsync: leaves its target's replicas to it",
	{Group: "networking.k8s.io", Kind: "Ingress"}:                    "agent: ingress proxy; reconciler: IngressStatusController",
	{Group: "networking.k8s.io", Kind: "IngressClass"}:               "agent: ingress proxy (the classes it serves)",
}

// TestEveryKindDecided: each kind the schema accepts from Git is either on
// the list or known to be acted on, never both, and each kind on the list
// is one the schema accepts and the store keeps, so no entry is dead.
func TestEveryKindDecided(t *testing.T) {
	s, err := kschema.Default()
	if err != nil {
		t.Fatal(err)
	}
	accepted := map[schema.GroupKind]bool{}
	for _, k := range s.Kinds() { // "apps/v1/Deployment", "v1/Pod"
		i := strings.LastIndex(k, "/")
		gv, err := schema.ParseGroupVersion(k[:i])
		if err != nil {
			t.Fatalf("schema kind %q: %v", k, err)
		}
		g := gv.WithKind(k[i+1:])
		accepted[g.GroupKind()] = true
		_, listed := support.NotActedOn(g.GroupKind())
		_, known := actedOn[g.GroupKind()]
		switch {
		case listed && known:
			t.Errorf("%s is on the list and said to be acted on (%s)", g.GroupKind(), actedOn[g.GroupKind()])
		case !listed && !known:
			t.Errorf("%s: the schema accepts it but nothing says whether keelson acts on it: add it to the list or to actedOn", g.GroupKind())
		}
		if _, err := store.ResourceFor(g); err != nil {
			t.Errorf("%s: %v", g, err)
		}
	}
	for _, k := range support.StoredOnly() {
		if !accepted[k.GroupKind] {
			t.Errorf("%s is on the list but the schema does not accept it", k.GroupKind)
		}
	}
	for g := range actedOn {
		if !accepted[g] {
			t.Errorf("actedOn names %s, which the schema does not accept", g)
		}
	}
}

func TestNotActedOn(t *testing.T) {
	tests := []struct {
		name   string
		gk     schema.GroupKind
		listed bool
		prefix string
	}{
		{name: "statefulset is acted on", gk: schema.GroupKind{Group: "apps", Kind: "StatefulSet"}},
		{name: "autoscaler is acted on", gk: schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}},
		{name: "ingress is acted on", gk: schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}},
		{name: "daemonset is acted on", gk: schema.GroupKind{Group: "apps", Kind: "DaemonSet"}},
		{name: "cronjob is acted on", gk: schema.GroupKind{Group: "batch", Kind: "CronJob"}},
		{name: "job is acted on", gk: schema.GroupKind{Group: "batch", Kind: "Job"}},
		{name: "core claim is acted on", gk: schema.GroupKind{Kind: "PersistentVolumeClaim"}},
		{name: "role is acted on", gk: schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "Role"}},
		{name: "pod template", gk: schema.GroupKind{Kind: "PodTemplate"}, listed: true, prefix: "keelson stores PodTemplates but makes no pods from them"},
		{name: "network policy", gk: schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, listed: true, prefix: "keelson stores NetworkPolicies but does not enforce them"},
		{name: "budget is acted on", gk: schema.GroupKind{Group: "policy", Kind: "PodDisruptionBudget"}},
		{name: "deployment is acted on", gk: schema.GroupKind{Group: "apps", Kind: "Deployment"}},
		{name: "service is acted on", gk: schema.GroupKind{Kind: "Service"}},
		// A group with a dot outside Kubernetes' is a custom resource's (custom_test.go).
		{name: "group matters", gk: schema.GroupKind{Group: "extensions", Kind: "Ingress"}},
		{name: "kind is case-sensitive", gk: schema.GroupKind{Group: "autoscaling", Kind: "horizontalpodautoscaler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := support.NotActedOn(tt.gk)
			if ok != tt.listed || !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("NotActedOn(%s) = %q, %t; want %t with prefix %q", tt.gk, got, ok, tt.listed, tt.prefix)
			}
		})
	}
}

// Each sentence is shown after "Kind ns/name: " and inside longer
// messages: one line, no final period, naming its kind.
func TestSentences(t *testing.T) {
	seen := map[schema.GroupKind]bool{}
	for _, k := range support.StoredOnly() {
		if seen[k.GroupKind] {
			t.Errorf("%s listed twice", k.GroupKind)
		}
		seen[k.GroupKind] = true
		m := k.Missing
		if !strings.HasPrefix(m, "keelson stores "+k.GroupKind.Kind+"s but ") && !strings.HasPrefix(m, "keelson stores "+k.GroupKind.Kind+"es but ") &&
			!strings.HasPrefix(m, "keelson stores "+strings.TrimSuffix(k.GroupKind.Kind, "y")+"ies but ") {
			t.Errorf("%s: %q does not start with the kind's plural", k.GroupKind, m)
		}
		if strings.ContainsAny(m, "\n") || strings.HasSuffix(m, ".") {
			t.Errorf("%s: %q is not one line without a final period", k.GroupKind, m)
		}
	}
	l := support.StoredOnly()
	l[0].Missing = "changed"
	if support.StoredOnly()[0].Missing == "changed" {
		t.Error("StoredOnly shares its slice with the caller")
	}
}
