// Package fakenode stands in for node agents in controller tests: it binds
// every pod it sees to a fake node and marks it Running and Ready, writing
// through the store as an agent would through the API.
//
//	fakenode.Start(ctx, st, fakenode.Options{})
package fakenode

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
)

// Options tune a fake node.
type Options struct {
	// Node is the node name pods are bound to; "fake-node" when empty.
	Node string
	// Ready decides whether a pod becomes Ready; nil makes every pod ready.
	// Pods it refuses are bound and Running but never Ready.
	Ready func(*corev1.Pod) bool
	// Workers write pod statuses in parallel; default 4.
	Workers int
	// Log receives errors; slog.Default when nil.
	Log *slog.Logger
}

// Start runs the fake node until ctx ends. It returns when its first list is
// done, so every pod that existed before is handled.
func Start(ctx context.Context, st *store.Store, opts Options) error {
	if opts.Node == "" {
		opts.Node = "fake-node"
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	pods, err := store.ResourceByName("pods")
	if err != nil {
		return err
	}
	l, err := st.List(ctx, pods, store.ListOptions{})
	if err != nil {
		return err
	}
	n := &node{st: st, opts: opts, work: make(chan *corev1.Pod, 1024)}
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range n.work {
				n.handle(ctx, p)
			}
		}()
	}
	for _, o := range l.Items {
		n.work <- o.(*corev1.Pod)
	}
	go func() {
		defer func() { close(n.work); wg.Wait() }()
		n.watch(ctx, pods, l.ResourceVersion)
	}()
	return nil
}

type node struct {
	st   *store.Store
	opts Options
	work chan *corev1.Pod
}

func (n *node) watch(ctx context.Context, pods store.Resource, rv string) {
	for ctx.Err() == nil {
		w, err := n.st.Watch(ctx, pods, store.WatchOptions{ResourceVersion: rv})
		if err != nil {
			n.opts.Log.Warn("fake node: watch pods", "err", err)
			if errors.Is(err, store.ErrTooOld) {
				rv = ""
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				rv = ""
				break
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			if ev.Type != watch.Deleted {
				select {
				case n.work <- p:
				case <-ctx.Done():
				}
			}
		}
		w.Stop()
	}
}

// handle binds the pod and sets its status, retrying on conflicts.
func (n *node) handle(ctx context.Context, p *corev1.Pod) {
	ready := n.opts.Ready == nil || n.opts.Ready(p)
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		if done(p, n.opts.Node, ready) || p.DeletionTimestamp != nil {
			return
		}
		cp := p.DeepCopy()
		setRunning(cp, n.opts.Node, ready)
		err := n.st.Update(ctx, cp)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			return
		case errors.Is(err, store.ErrConflict):
			fresh := &corev1.Pod{}
			if err := n.st.Get(ctx, p.Namespace, p.Name, fresh); err != nil {
				return
			}
			p = fresh
		default:
			if ctx.Err() == nil {
				n.opts.Log.Warn("fake node: update pod", "pod", p.Namespace+"/"+p.Name, "err", err)
			}
			return
		}
	}
}

func done(p *corev1.Pod, node string, ready bool) bool {
	if p.Spec.NodeName != "" && p.Spec.NodeName != node {
		return true
	}
	return p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning && isReady(p) == ready
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func setRunning(p *corev1.Pod, node string, ready bool) {
	now := metav1.Now()
	p.Spec.NodeName = node
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = "10.0.0.1"
	if p.Status.StartTime == nil {
		p.Status.StartTime = &now
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
	}
}
