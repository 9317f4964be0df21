package admission_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// BenchmarkCreatePods measures what admission adds to a controller's
// transaction of 100 pod creates, side by side: a store without it, one
// with it in a namespace without quotas or limits, and one where the
// namespace has a ResourceQuota and a LimitRange (the pods get defaults and
// the quota's status is written in the transaction). Then a status write of
// one pod (what agents do most), with admission and without.
func BenchmarkCreatePods(b *testing.B) {
	for _, mode := range []string{"plain", "admitted", "admitted-quota-limits"} {
		st := etcdtest.NewStore(b)
		if mode != "plain" {
			st.SetAdmitter(admission.New(st))
		}
		if mode == "admitted-quota-limits" {
			if err := st.Create(b.Context(), quota("compute", list("pods", "1000000", "requests.cpu", "100000"))); err != nil {
				b.Fatal(err)
			}
			lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "defaults"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type: corev1.LimitTypeContainer, DefaultRequest: list("cpu", "100m")}}}}
			if err := st.Create(b.Context(), lr); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		b.Run("txn100/"+mode, func(b *testing.B) {
			for b.Loop() {
				ops := make([]store.Op, 100)
				for i := range ops {
					ops[i] = store.CreateOp(pod(fmt.Sprintf("p%d", n), "", "64Mi"))
					n++
				}
				if err := st.Txn(b.Context(), ops...); err != nil {
					b.Fatal(err)
				}
			}
		})
		p := pod("status", "", "64Mi")
		if err := st.Create(b.Context(), p); err != nil {
			b.Fatal(err)
		}
		b.Run("status/"+mode, func(b *testing.B) {
			for b.Loop() {
				p.Status.Message = fmt.Sprint(n)
				n++
				if err := st.UpdateStatus(b.Context(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
