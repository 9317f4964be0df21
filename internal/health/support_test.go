package health

import (
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// TestHealthOfKindsNotActedOn: an object of every kind on support's list is
// Unsupported with the list's sentence, also when its status (which
// nothing in keelson writes) would make its kind's rule say Healthy,
// Progressing or Suspended; absent, it is Missing.
func TestHealthOfKindsNotActedOn(t *testing.T) {
	om := metav1.ObjectMeta{Namespace: "shop", Name: "x", Generation: 1}
	cluster := metav1.ObjectMeta{Name: "x", Generation: 1}
	tests := []struct {
		name string
		obj  store.Object
	}{
		{name: "storage class", obj: &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}, Provisioner: "rancher.io/local-path"}},
		{name: "priority class", obj: &schedulingv1.PriorityClass{ObjectMeta: cluster, Value: 1000}},
		{name: "runtime class", obj: &nodev1.RuntimeClass{ObjectMeta: cluster, Handler: "runsc"}},
		{name: "validating webhooks", obj: &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: cluster}},
		{name: "mutating webhooks", obj: &admissionv1.MutatingWebhookConfiguration{ObjectMeta: cluster}},
		{name: "admission policy", obj: &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: cluster}},
		{name: "admission policy binding", obj: &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: cluster}},
		{name: "network policy", obj: &networkingv1.NetworkPolicy{ObjectMeta: om}},
		{name: "lease from git", obj: &coordinationv1.Lease{ObjectMeta: om}},
		{name: "csi driver", obj: &storagev1.CSIDriver{ObjectMeta: cluster}},
		{name: "volume attachment marked attached", obj: &storagev1.VolumeAttachment{ObjectMeta: cluster, Status: storagev1.VolumeAttachmentStatus{Attached: true}}},
		{name: "storage capacity", obj: &storagev1.CSIStorageCapacity{ObjectMeta: om}},
		{name: "pod template", obj: &corev1.PodTemplate{ObjectMeta: om}},
		{name: "flow schema", obj: &flowcontrolv1.FlowSchema{ObjectMeta: cluster}},
		{name: "priority level", obj: &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: cluster}},
	}
	covered := map[schema.GroupKind]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := store.ResourceOf(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			gk := r.GVK.GroupKind()
			covered[gk] = true
			want, ok := support.NotActedOn(gk)
			if !ok {
				t.Fatalf("%s is not on support's list", gk)
			}
			if got := Of(tt.obj); got != (Health{Unsupported, want}) {
				t.Errorf("Of = %+v, want Unsupported: %s", got, want)
			}
			if got := Present(gk); got != (Health{Unsupported, want}) {
				t.Errorf("Present = %+v, want Unsupported: %s", got, want)
			}
			if got := Of(nilOf(tt.obj)); got.Status != Missing {
				t.Errorf("absent: %+v, want Missing", got)
			}
		})
	}
	for _, k := range support.StoredOnly() {
		if !covered[k.GroupKind] {
			t.Errorf("no case for %s, which is on support's list", k.GroupKind)
		}
	}
}

// nilOf is a typed nil of obj's type, as a cache miss gives.
func nilOf(obj store.Object) store.Object {
	switch obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		return (*autoscalingv2.HorizontalPodAutoscaler)(nil)
	case *batchv1.Job:
		return (*batchv1.Job)(nil)
	}
	return nil
}

// Kinds keelson acts on, and kinds with no rule at all, keep their health.
func TestPresentHealthOfKindsActedOn(t *testing.T) {
	for _, gk := range []schema.GroupKind{{Kind: "ConfigMap"}, {Kind: "Secret"}, {Kind: "Service"}, {Group: "apps", Kind: "Deployment"},
		{Kind: "Endpoints"}, {Group: "keelson.dev", Kind: "NodePolicy"}} {
		if got := Present(gk); got != (Health{Status: Healthy}) {
			t.Errorf("Present(%s) = %+v, want Healthy", gk, got)
		}
	}
}

// These rules were written while their kinds were on the list, before
// their controllers; they must stay right now that the kinds have left it.
// StatefulSets have their own test (reconciler's TestStatefulSetHealth).
func TestRuleHealthOfKindsWaiting(t *testing.T) {
	jobWith := func(c batchv1.JobConditionType) *batchv1.Job {
		return &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: c, Status: corev1.ConditionTrue}}}}
	}
	tests := []struct {
		name string
		obj  store.Object
		want Status
	}{
		{name: "job running", obj: &batchv1.Job{}, want: Progressing},
		{name: "job suspended", obj: &batchv1.Job{Spec: batchv1.JobSpec{Suspend: ptr.To(true)}}, want: Suspended},
		{name: "job failed", obj: jobWith(batchv1.JobFailed), want: Degraded},
		{name: "job complete", obj: jobWith(batchv1.JobComplete), want: Healthy},
		{name: "daemonset short", obj: &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberAvailable: 2}}, want: Progressing},
		{name: "cronjob suspended", obj: &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: ptr.To(true)}}, want: Suspended},
		{name: "cronjob", obj: &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *"}}, want: Healthy},
		{name: "cronjob with a schedule that does not parse", obj: &batchv1.CronJob{Spec: batchv1.CronJobSpec{Schedule: "every day"}}, want: Degraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Context{}).ruleHealth(tt.obj); got.Status != tt.want {
				t.Errorf("ruleHealth = %+v, want %s", got, tt.want)
			}
		})
	}
}

// RollUp keeps the worst object's sentence: the roll-up of a source with a
// NetworkPolicy says what keelson does not do.
func TestRollUpUnsupportedMessage(t *testing.T) {
	policy := Of(&networkingv1.NetworkPolicy{})
	got := RollUp(Health{Status: Healthy}, policy, Health{Suspended, "Deployment is paused"})
	if got != policy || got.Status != Unsupported || got.Message == "" {
		t.Errorf("RollUp = %+v, want the NetworkPolicy's %+v", got, policy)
	}
}

// An autoscaler is Progressing until it computed its generation, Degraded
// while it cannot scale or get metrics, Healthy otherwise.
func TestHPAHealth(t *testing.T) {
	om := metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 2}
	with := func(observed int64, conds ...autoscalingv2.HorizontalPodAutoscalerCondition) *autoscalingv2.HorizontalPodAutoscaler {
		return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: om, Status: autoscalingv2.HorizontalPodAutoscalerStatus{ObservedGeneration: ptr.To(observed), Conditions: conds}}
	}
	cond := func(typ autoscalingv2.HorizontalPodAutoscalerConditionType, st corev1.ConditionStatus, reason string) autoscalingv2.HorizontalPodAutoscalerCondition {
		return autoscalingv2.HorizontalPodAutoscalerCondition{Type: typ, Status: st, Reason: reason, Message: "m"}
	}
	able := cond(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale")
	for _, tc := range []struct {
		name string
		hpa  *autoscalingv2.HorizontalPodAutoscaler
		want Status
	}{
		{"an older generation", with(1, able), Progressing},
		{"no conditions yet", with(2), Progressing},
		{"scaling", with(2, able, cond(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound")), Healthy},
		{"no metrics", with(2, able, cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, "FailedGetResourceMetric")), Degraded},
		{"target scaled to zero", with(2, able, cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled")), Healthy},
		{"no target", with(2, cond(autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale")), Degraded},
	} {
		if got := Of(tc.hpa); got.Status != tc.want {
			t.Errorf("%s: %+v, want %s", tc.name, got, tc.want)
		}
	}
}
