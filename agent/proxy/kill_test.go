package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// childNetNS and childRound tell a child proxy process which namespace to
// program and which services to program there.
const (
	childNetNS = "KEELSON_PROXY_CHILD_NETNS"
	childRound = "KEELSON_PROXY_CHILD_ROUND"
)

const (
	killServiceCount  = 500
	killEndpointCount = 10
)

// killServices are the services of a round: 500 of 10 endpoints, less the
// endpoint numbered round (none for -1), so that each round changes every
// service and its sync is one large transaction.
func killServices(round int) []any {
	var objs []any
	for i := range killServiceCount {
		name := fmt.Sprintf("svc%d", i)
		var eps []ep
		for j := range killEndpointCount {
			if j != round {
				eps = append(eps, ready(benchIP(i*killEndpointCount+j, 42)))
			}
		}
		objs = append(objs, service(name, benchIP(i, 43)), slice(name, corev1.ProtocolTCP, 8080, eps...))
	}
	return objs
}

// TestProxyChildProcess is the node proxy of another process, which
// TestKilledMidUpdate starts and kills: it does nothing when run alone.
func TestProxyChildProcess(t *testing.T) {
	path := os.Getenv(childNetNS)
	if path == "" {
		return
	}
	round, _ := strconv.Atoi(os.Getenv(childRound))
	cs := fake.NewClientset(node(thisNode, "10.42.0.0/24", nodeIP), node(otherNode, "10.42.1.0/24", "192.168.77.3"))
	for _, o := range killServices(round) {
		if err := cs.Tracker().Add(o.(runtime.Object)); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	p, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Nodes:          factory.Core().V1().Nodes().Informer(),
		NodeName:       thisNode, Masquerade: true, NetNS: path, MinSyncPeriod: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	factory.Start(ctx.Done())
	fmt.Println("running")
	t.Fatal(p.Run(ctx)) // until killed
}

// TestKilledMidUpdate kills node proxy processes with SIGKILL while they
// program the node's table: the first once its table is in, the next ones
// at points spread over the first half of the time that took, each with every service
// changed. Each sync is one nftables transaction, which the kernel applies
// whole or not at all: after each kill the table is the one before or the
// one the killed proxy wanted, never a mix. Then the services change as
// they would while no proxy ran (pods died, services went) and a proxier
// starts: the table must end as a proxier builds it on an empty node from
// the same objects, with no DNAT to a dead pod.
func TestKilledMidUpdate(t *testing.T) {
	e := newEnv(t)
	took := killChildProxy(t, e, 0, 0)
	t.Logf("a child proxy's first sync took %v", took)
	had := 0
	for round := 1; round <= 6; round++ {
		after := took * time.Duration(round) / 12
		killChildProxy(t, e, round, after)
		now := droppedEndpoint(t, e.observed(t))
		if now != had && now != round {
			t.Fatalf("killed in round %d: the table lacks the endpoint of round %d, neither the one before (%d) nor the killed proxy's", round, now, had)
		}
		t.Logf("round %d, killed %v after start: the table is %s", round, after,
			map[bool]string{true: "the killed proxy's", false: "the one before"}[now == round])
		had = now
	}

	// The API as it is now, with changes made while no proxy ran: the first
	// pod of 100 services died and 10 services went.
	objs := killServices(had)
	e.create(objs...)
	var dead []string
	var final []any
	for i := range killServiceCount {
		svc, sl := objs[2*i].(*corev1.Service), objs[2*i+1].(*discoveryv1.EndpointSlice)
		switch {
		case i < 100:
			dead = append(dead, sl.Endpoints[0].Addresses...)
			sl.Endpoints = sl.Endpoints[1:]
			e.updateSlice(sl)
		case i < 110:
			e.deleteService(svc, sl)
			continue
		}
		final = append(final, svc, sl)
	}
	e.waitInformers(len(final)/2, dead[0])
	p, stop := e.start(nil)
	t.Cleanup(stop)
	e.waitApplied(p, 0)
	recovered := e.observed(t)

	fresh := newEnv(t)
	fresh.create(final...)
	fresh.proxier(nil)
	if want := fresh.observed(t); !reflect.DeepEqual(recovered, want) {
		t.Errorf("after the kills, the table has %d chains, %d maps, %d sets; a fresh proxier builds %d, %d, %d from the same objects",
			len(recovered.chains), len(recovered.elems), len(recovered.sets), len(want.chains), len(want.elems), len(want.sets))
		for name := range recovered.chains {
			if _, ok := want.chains[name]; !ok {
				t.Errorf("chain %s left over", name)
			}
		}
	}
	for _, ip := range dead {
		for name := range recovered.chains {
			if strings.Contains(name, "__"+ip+"/") {
				t.Errorf("chain %s DNATs to a dead pod", name)
			}
		}
	}
}

// killChildProxy runs a node proxy for round in a process of its own on
// e's node and kills it with SIGKILL after the given time from its start,
// or, when after is 0, as soon as its table is in; it returns how long that
// took.
func killChildProxy(t *testing.T, e *env, round int, after time.Duration) time.Duration {
	cmd := exec.Command(os.Args[0], "-test.run=^TestProxyChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), childNetNS+"="+e.node.Path, childRound+"="+strconv.Itoa(round))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(out)
	for lines.Scan() && lines.Text() != "running" {
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	start := time.Now()
	if after > 0 {
		time.Sleep(after)
		return after
	}
	eventually(t, "the child proxy's table", func() bool {
		tb, err := e.readTable(DefaultTable)
		return err == nil && len(tb.chains) > 0
	})
	return time.Since(start)
}

// droppedEndpoint is the endpoint number that the services in the table
// lack, which says which round's proxy wrote it; it fails the test when
// services disagree, which a partly applied transaction would show.
func droppedEndpoint(t *testing.T, st *tableState) int {
	t.Helper()
	have := map[string]bool{} // "svc<i> <ip>" of each endpoint chain
	for name := range st.chains {
		_, rest, ok := strings.Cut(name, "/svc")
		svc, _, _ := strings.Cut(rest, "/")
		_, ip, found := strings.Cut(rest, "__")
		ip, _, _ = strings.Cut(ip, "/")
		if ok && found {
			have["svc"+svc+" "+ip] = true
		}
	}
	lacking := map[int]int{}
	for i := range killServiceCount {
		missing := -1
		for j := range killEndpointCount {
			if !have[fmt.Sprintf("svc%d %s", i, benchIP(i*killEndpointCount+j, 42))] {
				missing = j
			}
		}
		lacking[missing]++
	}
	if len(lacking) != 1 {
		t.Fatalf("the table is a mix: services by the endpoint they lack: %v", lacking)
	}
	for j := range lacking {
		return j
	}
	return -1
}

func (e *env) deleteService(svc *corev1.Service, sl *discoveryv1.EndpointSlice) {
	e.t.Helper()
	ctx := e.t.Context()
	if err := e.cs.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.cs.DiscoveryV1().EndpointSlices(sl.Namespace).Delete(ctx, sl.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// waitInformers waits until the informers hold n services and no slice
// with the address dead.
func (e *env) waitInformers(n int, dead string) {
	services := e.factory.Core().V1().Services().Informer().GetStore()
	slices := e.factory.Discovery().V1().EndpointSlices().Informer().GetStore()
	eventually(e.t, "the informers to see the changes", func() bool {
		if len(services.List()) != n || len(slices.List()) != n {
			return false
		}
		for _, o := range slices.List() {
			for _, ep := range o.(*discoveryv1.EndpointSlice).Endpoints {
				if ep.Addresses[0] == dead {
					return false
				}
			}
		}
		return true
	})
}

// observed is the node's table as a starting proxier reads it: each
// chain's hook and rule digests, the sets, the maps' elements and the pod
// CIDRs.
func (e *env) observed(t *testing.T) *tableState {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(e.node.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	o, err := observe(c, &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyIPv4})
	if err != nil || o == nil {
		t.Fatalf("read the table: %v (found: %v)", err, o != nil)
	}
	return o.state
}
