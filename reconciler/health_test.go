package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/health"
)

// TestDeploymentHealthFollowsRollout checks health against a live rollout:
// Healthy when rolled out, Degraded past the deadline.
func TestDeploymentHealthFollowsRollout(t *testing.T) {
	env := newTestEnvWith(t, fakenodeRefusing("broken"))
	d := newDeployment("web", 2, "web:1")
	d.Spec.ProgressDeadlineSeconds = ptr.To(int32(1))
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	if h := health.Of(d); h.Status != health.Healthy {
		t.Fatalf("rolled out deployment: %+v", h)
	}
	d.Spec.Template.Spec.Containers[0].Image = "broken"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deployment Degraded", func() (bool, string) {
		h := health.Of(env.getDeployment("web"))
		return h.Status == health.Degraded, string(h.Status) + ": " + h.Message
	})
}

// TestHealthOfObjects: a Deployment the controllers rolled out is Healthy,
// a declared object that is absent is Missing and rolls the rest up.
func TestHealthOfObjects(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, env, "web", "web:1")
	deployGVK := appsv1.SchemeGroupVersion.WithKind("Deployment")
	refs := []health.ObjectRef{{GVK: deployGVK, Namespace: "default", Name: "web"}}
	all, each, err := health.OfObjects(t.Context(), env.st, refs)
	if err != nil {
		t.Fatal(err)
	}
	if all.Status != health.Healthy || len(each) != 1 || each[0].Status != health.Healthy {
		t.Fatalf("rolled-out deployment: %+v %+v", all, each)
	}
	refs = append(refs, health.ObjectRef{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespace: "default", Name: "absent"})
	all, each, err = health.OfObjects(t.Context(), env.st, refs)
	if err != nil {
		t.Fatal(err)
	}
	if all.Status != health.Missing || each[1].Status != health.Missing {
		t.Fatalf("with an absent object: %+v %+v", all, each)
	}
}
