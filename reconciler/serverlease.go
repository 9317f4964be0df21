package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// Every server, leading or not, announces itself with a Lease in
// kube-system (as kube-apiservers do with theirs), renewed while it runs:
// the leader publishes the addresses of the servers whose lease is live as
// the endpoints of the kubernetes and kube-dns services, so that pods reach
// every server, not only the leader, and a server that dies leaves them
// when its lease runs out.
const (
	// LabelServer marks a server's Lease; its value is "true".
	LabelServer = "keelson.dev/control-plane-server"
	// The announced address and ports, as annotations of the Lease.
	annServerAddress = "keelson.dev/advertise-address"
	annServerAPIPort = "keelson.dev/api-port"
	annServerDNSPort = "keelson.dev/dns-port"
	// serverLeasePrefix starts the name of every server's Lease.
	serverLeasePrefix = "keelson-server-"
)

// ServerAnnouncement is what a server tells the others of itself.
type ServerAnnouncement struct {
	// Identity names the server (as in the leader election); its Lease's
	// name is derived from it.
	Identity string
	// Address is where pods reach the server (its advertise address);
	// APIPort and DNSPort its API and cluster DNS ports (0: none).
	Address          string
	APIPort, DNSPort int32
	// Duration of the Lease: a server that stops renewing it leaves the
	// endpoints after this long. It renews every third of it. Default 30s.
	Duration time.Duration
}

// serverLeaseName is the Lease name of the server with this identity.
func serverLeaseName(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return serverLeasePrefix + hex.EncodeToString(sum[:8])
}

// AnnounceServer keeps this server's Lease until ctx ends, then deletes it
// so that the endpoints drop the server at once. Errors are logged and
// retried at the next renewal; it returns an error only for an
// announcement that cannot be made.
func AnnounceServer(ctx context.Context, st *store.Store, log *slog.Logger, a ServerAnnouncement) error {
	if a.Identity == "" {
		return errors.New("server announcement: no identity")
	}
	if _, err := netip.ParseAddr(a.Address); err != nil {
		return fmt.Errorf("server announcement: address %q: %w", a.Address, err)
	}
	if a.Duration <= 0 {
		a.Duration = 30 * time.Second
	}
	name := serverLeaseName(a.Identity)
	log = log.With("component", "reconciler", "lease", servicenet.DNSServiceNamespace+"/"+name)
	tick := time.NewTicker(a.Duration / 3)
	defer tick.Stop()
	for {
		if err := renewServerLease(ctx, st, name, a); err != nil && ctx.Err() == nil {
			log.Warn("announcing this server", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := st.Delete(dctx, store.MustResource("leases.coordination.k8s.io"), servicenet.DNSServiceNamespace, name, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
				log.Warn("removing this server's lease: other servers drop it when it runs out", "err", err)
			}
			return nil
		case <-tick.C:
		}
	}
}

func renewServerLease(ctx context.Context, st *store.Store, name string, a ServerAnnouncement) error {
	now := metav1.NewMicroTime(time.Now())
	want := coordinationv1.LeaseSpec{
		HolderIdentity: ptr.To(a.Identity), RenewTime: &now,
		LeaseDurationSeconds: ptr.To(int32(a.Duration.Round(time.Second) / time.Second)),
	}
	ann := map[string]string{annServerAddress: a.Address,
		annServerAPIPort: strconv.Itoa(int(a.APIPort)), annServerDNSPort: strconv.Itoa(int(a.DNSPort))}
	cur := &coordinationv1.Lease{}
	err := st.Get(ctx, servicenet.DNSServiceNamespace, name, cur)
	if errors.Is(err, store.ErrNotFound) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: servicenet.DNSServiceNamespace, Name: name,
			Labels: map[string]string{LabelServer: "true"}, Annotations: ann}, Spec: want}
		want.AcquireTime = &now
		return st.Create(ctx, l)
	}
	if err != nil {
		return err
	}
	if cur.Spec.AcquireTime == nil {
		want.AcquireTime = &now
	} else {
		want.AcquireTime = cur.Spec.AcquireTime
	}
	cur.Labels = map[string]string{LabelServer: "true"}
	cur.Annotations, cur.Spec = ann, want
	return st.Update(ctx, cur)
}

// liveServers are the addresses of the servers whose Lease is live and
// that serve on the ports the leader does, sorted, and when the first of
// those leases runs out (zero when none is live).
func liveServers(leases []*coordinationv1.Lease, apiPort, dnsPort int32, now time.Time) (addrs []netip.Addr, nextExpiry time.Time) {
	for _, l := range leases {
		if l.Labels[LabelServer] != "true" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
		if !expiry.After(now) {
			continue
		}
		addr, err := netip.ParseAddr(l.Annotations[annServerAddress])
		if err != nil || l.Annotations[annServerAPIPort] != strconv.Itoa(int(apiPort)) || l.Annotations[annServerDNSPort] != strconv.Itoa(int(dnsPort)) {
			continue
		}
		if !slices.Contains(addrs, addr) {
			addrs = append(addrs, addr)
		}
		if nextExpiry.IsZero() || expiry.Before(nextExpiry) {
			nextExpiry = expiry
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs, nextExpiry
}

// LeaderLeaseName is the Lease of kube-system whose holder is the leading
// server, as kube-controller-manager's is: `kubectl get lease -n kube-system
// keelson-controllers` shows who leads. It mirrors the election for people;
// the election itself is in etcd (store.Lead).
const LeaderLeaseName = "keelson-controllers"

// MirrorLeadership keeps LeaderLeaseName naming identity, renewed every half
// of ttl, until ctx (a leadership term's, so that its writes are fenced)
// ends. Errors are logged and tried again at the next renewal.
func MirrorLeadership(ctx context.Context, st *store.Store, log *slog.Logger, identity string, ttl time.Duration) {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	tick := time.NewTicker(ttl / 2)
	defer tick.Stop()
	for {
		if err := renewLeaderLease(ctx, st, identity, ttl); err != nil && ctx.Err() == nil {
			log.Warn("leader lease", "component", "reconciler", "lease", servicenet.DNSServiceNamespace+"/"+LeaderLeaseName, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func renewLeaderLease(ctx context.Context, st *store.Store, identity string, ttl time.Duration) error {
	now := metav1.NewMicroTime(time.Now())
	seconds := ptr.To(int32(max(1, ttl.Round(time.Second)/time.Second)))
	cur := &coordinationv1.Lease{}
	err := st.Get(ctx, servicenet.DNSServiceNamespace, LeaderLeaseName, cur)
	if errors.Is(err, store.ErrNotFound) {
		return st.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: servicenet.DNSServiceNamespace, Name: LeaderLeaseName},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(identity), AcquireTime: &now, RenewTime: &now,
				LeaseDurationSeconds: seconds, LeaseTransitions: ptr.To(int32(0))},
		})
	}
	if err != nil {
		return err
	}
	if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != identity {
		cur.Spec.HolderIdentity, cur.Spec.AcquireTime = ptr.To(identity), &now
		cur.Spec.LeaseTransitions = ptr.To(ptr.Deref(cur.Spec.LeaseTransitions, 0) + 1)
	}
	cur.Spec.RenewTime, cur.Spec.LeaseDurationSeconds = &now, seconds
	return st.Update(ctx, cur)
}
