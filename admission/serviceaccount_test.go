package admission_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/admission"
)

// A created pod gets its ServiceAccount's token volume, mounted in every
// container, as Kubernetes' ServiceAccount admission does, unless the pod,
// or its ServiceAccount when the pod says nothing, turns that off.
func TestServiceAccountAdmission(t *testing.T) {
	st := admitted(t)
	ctx := t.Context()
	off := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "quiet"}, AutomountServiceAccountToken: ptr.To(false)}
	if err := st.Create(ctx, off); err != nil {
		t.Fatal(err)
	}
	mounted := func(p *corev1.Pod) string {
		var vol string
		for _, v := range p.Spec.Volumes {
			if strings.HasPrefix(v.Name, admission.APIAccessVolumePrefix) {
				vol = v.Name
				src := v.Projected
				if src == nil || len(src.Sources) != 3 || src.Sources[0].ServiceAccountToken == nil || *src.Sources[0].ServiceAccountToken.ExpirationSeconds != 3607 ||
					src.Sources[1].ConfigMap == nil || src.Sources[1].ConfigMap.Name != "kube-root-ca.crt" || src.Sources[2].DownwardAPI == nil {
					t.Errorf("pod %s: volume %s is not the token, the CA and the namespace: %+v", p.Name, v.Name, v.VolumeSource)
				}
			}
		}
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				n := 0
				for _, m := range c.VolumeMounts {
					if m.MountPath == admission.ServiceAccountMountPath {
						n++
						if vol != "" && (m.Name != vol || !m.ReadOnly) {
							t.Errorf("pod %s, container %s: mount %+v", p.Name, c.Name, m)
						}
					}
				}
				if vol != "" && n != 1 {
					t.Errorf("pod %s, container %s: %d mounts at the token's path, want 1", p.Name, c.Name, n)
				}
			}
		}
		return vol
	}
	tests := []struct {
		name      string
		edit      func(*corev1.Pod)
		account   string
		wantMount bool
	}{
		{"default", func(*corev1.Pod) {}, "default", true},
		{"named", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "web" }, "web", true},
		{"deprecated field", func(p *corev1.Pod) { p.Spec.DeprecatedServiceAccount = "web" }, "web", true},
		{"pod says no", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr.To(false) }, "default", false},
		{"account says no", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "quiet" }, "quiet", false},
		{"pod overrules its account", func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = "quiet"
			p.Spec.AutomountServiceAccountToken = ptr.To(true)
		}, "quiet", true},
		{"own mount at the path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "mine", MountPath: admission.ServiceAccountMountPath}}
		}, "default", false},
		{"init containers too", func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x"}} }, "default", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod("p"+string(rune('a'+i)), "", "")
			tt.edit(p)
			if err := st.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
			got := &corev1.Pod{}
			if err := st.Get(ctx, "team", p.Name, got); err != nil {
				t.Fatal(err)
			}
			if got.Spec.ServiceAccountName != tt.account || got.Spec.DeprecatedServiceAccount != tt.account {
				t.Errorf("ServiceAccount %q (deprecated field %q), want %q", got.Spec.ServiceAccountName, got.Spec.DeprecatedServiceAccount, tt.account)
			}
			if vol := mounted(got); (vol != "") != tt.wantMount {
				t.Errorf("token volume %q, want one: %v", vol, tt.wantMount)
			}
			// An update keeps the pod as it is: admission mounts at creation.
			got.Labels = map[string]string{"x": "y"}
			if err := st.Update(ctx, got); err != nil {
				t.Fatal(err)
			}
			again := &corev1.Pod{}
			if err := st.Get(ctx, "team", p.Name, again); err != nil || len(again.Spec.Volumes) != len(got.Spec.Volumes) {
				t.Errorf("update changed the volumes: %v %v", err, again.Spec.Volumes)
			}
		})
	}
}
