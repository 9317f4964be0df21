package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// sliceAddresses lists the addresses of an EndpointSlice, "" when absent.
func sliceAddresses(t *testing.T, st *store.Store, ns, name string) string {
	t.Helper()
	s := &discoveryv1.EndpointSlice{}
	if err := st.Get(t.Context(), ns, name, s); err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range s.Endpoints {
		out = append(out, e.Addresses...)
	}
	return strings.Join(out, ",")
}

func waitServers(t *testing.T, st *store.Store, want string) {
	t.Helper()
	eventually(t, "the control plane's endpoints "+want, func() (bool, string) {
		api, dns := sliceAddresses(t, st, "default", "kubernetes"), sliceAddresses(t, st, "kube-system", "kube-dns")
		return api == want && dns == want, fmt.Sprintf("kubernetes %q, kube-dns %q", api, dns)
	})
}

func announce(t *testing.T, st *store.Store, a ServerAnnouncement) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- AnnounceServer(ctx, st, testLog(), a) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("AnnounceServer: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return stop
}

// TestControlPlaneEndpointsAreTheLiveServers: the kubernetes and kube-dns
// services have every server whose Lease is live as an endpoint, on the
// leader's ports; a server that stops leaves them at once, one that dies
// when its Lease runs out, one on other ports never joins.
func TestControlPlaneEndpointsAreTheLiveServers(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, servicesOptions(ServiceOptions{CIDR: "10.96.0.0/16", Address: "192.0.2.1", APIPort: 7443, DNSPort: 5353}))
	// No server announced yet: the leader's own address. The announcers
	// renew rarely here, so that only the expiry makes the dead one leave.
	waitServers(t, st, "192.0.2.1")

	announce(t, st, ServerAnnouncement{Identity: "s1", Address: "192.0.2.1", APIPort: 7443, DNSPort: 5353, Duration: 5 * time.Minute})
	stop2 := announce(t, st, ServerAnnouncement{Identity: "s2", Address: "192.0.2.2", APIPort: 7443, DNSPort: 5353, Duration: 5 * time.Minute})
	announce(t, st, ServerAnnouncement{Identity: "other-ports", Address: "192.0.2.9", APIPort: 6443, DNSPort: 53, Duration: 5 * time.Minute})
	waitServers(t, st, "192.0.2.1,192.0.2.2")

	stop2() // a server stopped cleanly: its lease goes with it
	waitServers(t, st, "192.0.2.1")

	// A server that died: its lease stays, not renewed, and runs out.
	now := metav1.NewMicroTime(time.Now())
	dead := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: serverLeaseName("s3"),
		Labels:      map[string]string{LabelServer: "true"},
		Annotations: map[string]string{annServerAddress: "192.0.2.3", annServerAPIPort: "7443", annServerDNSPort: "5353"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("s3"), RenewTime: &now, LeaseDurationSeconds: ptr.To(int32(3))}}
	if err := st.Create(t.Context(), dead); err != nil {
		t.Fatal(err)
	}
	waitServers(t, st, "192.0.2.1,192.0.2.3")
	waitServers(t, st, "192.0.2.1") // once its 3 s are over, with no event to say so
}

func TestLiveServers(t *testing.T) {
	now := time.Now()
	lease := func(addr string, renewed time.Duration, seconds int32, api, dns string, label bool) *coordinationv1.Lease {
		rt := metav1.NewMicroTime(now.Add(-renewed))
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annServerAddress: addr, annServerAPIPort: api, annServerDNSPort: dns}},
			Spec: coordinationv1.LeaseSpec{RenewTime: &rt, LeaseDurationSeconds: ptr.To(seconds)}}
		if label {
			l.Labels = map[string]string{LabelServer: "true"}
		}
		return l
	}
	addrs, next := liveServers([]*coordinationv1.Lease{
		lease("10.0.0.2", time.Second, 30, "7443", "53", true),
		lease("10.0.0.1", 20*time.Second, 30, "7443", "53", true), // runs out first, in 10 s
		lease("10.0.0.1", 0, 30, "7443", "53", true),              // the same address twice
		lease("10.0.0.3", 31*time.Second, 30, "7443", "53", true), // ran out
		lease("10.0.0.4", 0, 30, "6443", "53", true),              // other API port
		lease("10.0.0.5", 0, 30, "7443", "53", false),             // not a server's
		lease("not-an-ip", 0, 30, "7443", "53", true),
	}, 7443, 53, now)
	var got []string
	for _, a := range addrs {
		got = append(got, a.String())
	}
	if !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("live servers %v, want 10.0.0.1 and 10.0.0.2", got)
	}
	if d := next.Sub(now); d < 9*time.Second || d > 10*time.Second {
		t.Errorf("next expiry in %s, want 10 s", d)
	}
}

// TestMirrorLeadership: the keelson-controllers Lease names whoever leads,
// written from within the leader's (fenced) term, and counts the changes
// of leader.
func TestMirrorLeadership(t *testing.T) {
	st := etcdtest.NewStore(t)
	term := func(identity string) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = st.Lead(ctx, store.Election{Name: ElectionName, Identity: identity, TTL: 2 * time.Second},
				func(term context.Context) { MirrorLeadership(term, st, testLog(), identity, 2*time.Second) })
		}()
		eventually(t, "lease held by "+identity, func() (bool, string) {
			l := &coordinationv1.Lease{}
			if err := st.Get(t.Context(), "kube-system", LeaderLeaseName, l); err != nil {
				return false, err.Error()
			}
			return ptr.Deref(l.Spec.HolderIdentity, "") == identity, fmt.Sprintf("%+v", l.Spec)
		})
		cancel()
		<-done
	}
	term("a")
	term("b")
	l := &coordinationv1.Lease{}
	if err := st.Get(t.Context(), "kube-system", LeaderLeaseName, l); err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(l.Spec.LeaseTransitions, -1); got != 1 {
		t.Errorf("leaseTransitions %d, want 1", got)
	}
	if ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 2 || l.Spec.AcquireTime == nil || l.Spec.RenewTime == nil {
		t.Errorf("lease spec %+v: want a 2 s duration, acquire and renew times", l.Spec)
	}
}
