package health

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// Status is the health of one object in the vocabulary Argo CD users know,
// and Unsupported, which is keelson's own. The values are stable strings:
// they are stored in Syncs and read by tools.
type Status string

// Health statuses, from best to worst (see Worse).
const (
	// Healthy: the object does what its spec asks.
	Healthy Status = "Healthy"
	// Suspended: paused on purpose (a paused Deployment, a suspended Job).
	Suspended Status = "Suspended"
	// Unsupported: keelson stores the object but does not act on its kind
	// yet (internal/support's list), so nothing it asks for happens. Not
	// Argo CD's Unknown, which means a health check failed and ranks worst:
	// here the cause is known and stays until keelson learns the kind.
	// It ranks below Progressing and Missing, so that a roll-up shows a
	// rollout or a lost object first and this once they settle, and above
	// Suspended, which someone chose.
	Unsupported Status = "Unsupported"
	// Progressing: not there yet, but moving (a rollout, pods starting).
	Progressing Status = "Progressing"
	// Missing: declared in Git, absent from the cluster.
	Missing Status = "Missing"
	// Degraded: failed or stuck (deadline exceeded, pods failing).
	Degraded Status = "Degraded"
	// Unknown: health cannot be told.
	Unknown Status = "Unknown"
)

var rank = map[Status]int{Healthy: 0, Suspended: 1, Unsupported: 2, Progressing: 3, Missing: 4, Degraded: 5, Unknown: 6}

// Worse reports whether a is worse than b, in the order Healthy, Suspended,
// Unsupported, Progressing, Missing, Degraded, Unknown (Argo CD's, with
// Unsupported added).
func Worse(a, b Status) bool { return rank[a] > rank[b] }

// Health is an object's health and a sentence saying why.
type Health struct {
	Status  Status
	Message string
}

// Kinds lists the group-resources whose health has a rule (Of): watchers
// recompute a source's health when one of its objects of these kinds
// changes. Other kinds are Healthy when they exist, or Unsupported when
// keelson does not act on them yet (Present), so knowing that they exist
// is enough. Every kind here is acted on now; a kind that gets a rule
// while still on support's list belongs here all the same, so that its
// rule applies as soon as it leaves.
var Kinds = []string{
	"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps",
	"replicationcontrollers", "pods", "jobs.batch", "cronjobs.batch", "namespaces",
	"nodepolicies.keelson.dev", "services", "persistentvolumes", "persistentvolumeclaims",
	"horizontalpodautoscalers.autoscaling", "resourcequotas", "poddisruptionbudgets.policy",
	"ingresses.networking.k8s.io", "ingressclasses.networking.k8s.io",
}

// Of computes the health of one object from its spec and status; nil is
// Missing. An object of a kind keelson does not act on yet is Unsupported,
// whatever its status says: nothing writes that status. Other kinds
// without a health rule are Healthy when they exist.
func Of(obj store.Object) Health {
	var gk schema.GroupKind
	if obj != nil {
		if r, err := store.ResourceOf(obj); err == nil {
			gk = r.GVK.GroupKind()
		}
	}
	return OfKind(gk, obj)
}

// OfKind is Of for a caller that knows obj's kind, which spares a lookup
// in the scheme for each object of a large inventory. A nil obj, or a
// typed nil as a cache miss gives, is Missing.
func OfKind(gk schema.GroupKind, obj store.Object) Health { return Context{}.OfKind(gk, obj) }

// Context is what a health rule may look up beside its object. The zero
// Context looks up nothing: the object alone says.
type Context struct {
	// IngressClasses are the cluster's: an Ingress that names a class of
	// keelson's controller under a name of its own is served. Nil knows
	// keelson's class by its name only.
	IngressClasses ingressclass.Classes
}

// OfKind is the package's OfKind, with what c can look up.
func (c Context) OfKind(gk schema.GroupKind, obj store.Object) Health {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return Health{Missing, "not found in the cluster"}
	}
	if h := Present(gk); h.Status == Unsupported {
		return h
	}
	return c.ruleHealth(obj)
}

// Present is the health of an existing object of kind gk that has no
// health rule: Unsupported, with support's sentence, when keelson does not
// act on the kind yet, Healthy otherwise. It serves a caller that only
// knows the object exists.
func Present(gk schema.GroupKind) Health {
	if missing, ok := support.NotActedOn(gk); ok {
		return Health{Unsupported, missing}
	}
	return Health{Status: Healthy}
}

// RollUp combines the health of several objects (the objects one Git source
// declared): the worst status wins, with its message. None is Healthy.
func RollUp(hs ...Health) Health {
	out := Health{Status: Healthy}
	for _, h := range hs {
		if Worse(h.Status, out.Status) {
			out = h
		}
	}
	return out
}

// ruleHealth is the health of an existing object by its kind's rule. A
// kind on support's list is Unsupported instead (OfKind); when it leaves
// the list, its rule here applies.
func (c Context) ruleHealth(obj store.Object) Health {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return deploymentHealth(o)
	case *appsv1.ReplicaSet:
		return replicasHealth("replica set", o.Generation, o.Status.ObservedGeneration, replicasOf(o.Spec.Replicas), o.Status.AvailableReplicas, rsFailure(o.Status))
	case *corev1.ReplicationController:
		return replicasHealth("replication controller", o.Generation, o.Status.ObservedGeneration, replicasOf(o.Spec.Replicas), o.Status.AvailableReplicas, rcFailure(o.Status))
	case *appsv1.StatefulSet:
		return statefulSetHealth(o)
	case *appsv1.DaemonSet:
		return replicasHealth("daemon set", o.Generation, o.Status.ObservedGeneration, o.Status.DesiredNumberScheduled, o.Status.NumberAvailable, "")
	case *batchv1.Job:
		return jobHealth(o)
	case *batchv1.CronJob:
		return cronJobHealth(o)
	case *corev1.Pod:
		return podHealth(o)
	case *corev1.Namespace:
		if o.Status.Phase == corev1.NamespaceTerminating {
			return Health{Progressing, "Namespace is terminating"}
		}
	case *corev1.PersistentVolume:
		return volumeHealth(o)
	case *corev1.PersistentVolumeClaim:
		return claimHealth(o)
	case *keelsonv1alpha1.NodePolicy:
		return nodePolicyHealth(o)
	case *corev1.Service:
		return serviceHealth(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return hpaHealth(o)
	case *corev1.ResourceQuota:
		return quotaHealth(o)
	case *policyv1.PodDisruptionBudget:
		return budgetHealth(o)
	case *networkingv1.Ingress:
		return ingressHealth(o, c.IngressClasses)
	case *networkingv1.IngressClass:
		return ingressClassHealth(o)
	}
	return Health{Status: Healthy}
}
