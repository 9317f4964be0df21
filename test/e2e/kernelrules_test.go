package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/netnstest"
)

// kernelRules reads the node proxy's table in a network namespace, and is
// told by the kernel of every nftables transaction committed there.
type kernelRules struct {
	nft   *nftables.Conn
	picks map[string]*nftables.Set // each service's pick map, by service name
	gens  chan struct{}
	// timerWakeups counts checks that a transaction's notification did not
	// wake (one was lost, or came before the change): a figure that is not
	// near zero means the latencies are rounded up to the fallback period.
	timerWakeups int
}

// openKernelRules joins the namespace's nftables multicast group, whose
// NEWGEN message ends each committed transaction, and opens a connection to
// read the table.
func openKernelRules(b *testing.B, ns *netnstest.NS) *kernelRules {
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		b.Fatalf("nftables in netns %s: %v", ns.Name, err)
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns.Handle())})
	if err != nil {
		b.Fatalf("netfilter netlink in netns %s: %v", ns.Name, err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		b.Fatalf("join the nftables group in netns %s: %v", ns.Name, err)
	}
	k := &kernelRules{nft: nft, gens: make(chan struct{}, 1)}
	var closing atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		newGen := netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN)
		for {
			msgs, err := c.Receive()
			if closing.Load() {
				return
			}
			// A receive error (ENOBUFS: the socket's buffer overflowed)
			// may have lost a NEWGEN: wake the reader all the same.
			gen := err != nil
			for _, m := range msgs {
				gen = gen || m.Header.Type == newGen
			}
			if gen {
				select {
				case k.gens <- struct{}{}:
				default:
				}
			}
		}
	}()
	b.Cleanup(func() {
		closing.Store(true)
		c.Close()
		<-done
	})
	return k
}

// drain forgets the transactions notified so far.
func (k *kernelRules) drain() {
	select {
	case <-k.gens:
	default:
	}
}

// waitAll waits until every service's pick map leads to all its pods, and
// remembers the pick maps.
func (k *kernelRules) waitAll(b *testing.B, pods [][]*corev1.Pod) {
	deadline := time.Now().Add(5 * time.Minute)
	why := ""
	for time.Now().Before(deadline) {
		if why = k.allInPlace(pods); why == "" {
			return
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("the rules of %d services × %d pods were not in place after 5 minutes: %s", len(pods), rulesPods, why)
}

func (k *kernelRules) allInPlace(pods [][]*corev1.Pod) string {
	sets, err := k.nft.GetSets(tableOf)
	if err != nil {
		return err.Error()
	}
	k.picks = map[string]*nftables.Set{}
	for _, s := range sets {
		// pick-svc-<hash>-<namespace>/<name>/<protocol>/<port name>
		if rest, ok := strings.CutPrefix(s.Name, "pick-svc-"); ok && strings.HasSuffix(rest, "/tcp/http") {
			if _, id, ok := strings.Cut(rest, "-default/"); ok {
				k.picks[strings.TrimSuffix(id, "/tcp/http")] = s
			}
		}
	}
	if len(k.picks) < len(pods) {
		return fmt.Sprintf("%d pick maps of %d", len(k.picks), len(pods))
	}
	for s, ps := range pods {
		targets, err := k.targets(svcName(s))
		if err != nil {
			return err.Error()
		}
		if len(targets) != len(ps) {
			return fmt.Sprintf("%s leads to %d endpoints of %d", svcName(s), len(targets), len(ps))
		}
	}
	return ""
}

// waitPod waits until the kernel's rules for svc lead to ip (ready) or no
// longer do, checking after each transaction committed in the namespace and,
// should a notification be lost, every 100 ms.
func (k *kernelRules) waitPod(b *testing.B, svc, ip string, ready bool) {
	deadline := time.After(time.Minute)
	fallback := time.NewTimer(100 * time.Millisecond)
	defer fallback.Stop()
	for {
		select {
		case <-k.gens:
		case <-fallback.C:
			k.timerWakeups++
		case <-deadline:
			b.Fatalf("%s: the rules did not follow pod %s to ready=%v in a minute", svc, ip, ready)
		}
		targets, err := k.targets(svc)
		if err != nil {
			b.Fatal(err)
		}
		in := false
		for _, t := range targets {
			in = in || strings.HasSuffix(t, "__"+ip+"/8080")
		}
		if in == ready {
			return
		}
		fallback.Reset(100 * time.Millisecond)
	}
}

// targets reads svc's pick map: the endpoint chains its random spread goes
// to.
func (k *kernelRules) targets(svc string) ([]string, error) {
	s, ok := k.picks[svc]
	if !ok {
		return nil, fmt.Errorf("no pick map known for %s", svc)
	}
	elems, err := k.nft.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("elements of %s: %w", s.Name, err)
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		chain, err := verdictChain(e.Val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		out = append(out, chain)
	}
	return out, nil
}

// verdictChain reads the chain of a verdict map element's data, which
// google/nftables hands back as the kernel's nested attributes.
func verdictChain(b []byte) (string, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", err
	}
	ad.ByteOrder = binary.BigEndian
	chain := ""
	for ad.Next() {
		if ad.Type() == unix.NFTA_VERDICT_CHAIN {
			chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return "", err
	}
	if chain == "" {
		return "", errors.New("a verdict without a chain")
	}
	return chain, nil
}
