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
	// Exit, when set, decides whether a pod's containers exit at once and
	// with which code: the pod is then Succeeded (0) or Failed, each
	// container terminated with that code, as a node agent reports a pod
	// of restartPolicy Never or OnFailure that ended.
	Exit func(*corev1.Pod) (code int32, exits bool)
	// Terminate, when set, removes the node's pods marked for deletion, as
	// an agent does once their containers have stopped; otherwise they stay
	// marked, as on a node that does not answer.
	Terminate bool
	// NoBind leaves binding to the scheduler: the node runs only the pods
	// bound to it, as an agent does. Several fake nodes need it.
	NoBind bool
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
	if n.opts.Terminate && p.DeletionTimestamp != nil && p.Spec.NodeName == n.opts.Node {
		n.terminate(ctx, p)
		return
	}
	if n.opts.NoBind && p.Spec.NodeName != n.opts.Node {
		return
	}
	ready := n.opts.Ready == nil || n.opts.Ready(p)
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		if done(p, n.opts.Node, ready) || p.DeletionTimestamp != nil || finished(p) {
			return
		}
		cp := p.DeepCopy()
		setRunning(cp, n.opts.Node, ready)
		if n.opts.Exit != nil && (p.Spec.NodeName == "" || p.Spec.NodeName == n.opts.Node) {
			if code, exits := n.opts.Exit(p); exits {
				setExited(cp, code)
			}
		}
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

// terminate finishes the deletion of a pod marked for it, as a node agent
// does once its containers have stopped: the pod of this uid is removed.
func (n *node) terminate(ctx context.Context, p *corev1.Pod) {
	uid := p.UID
	pods, _ := store.ResourceByName("pods")
	err := n.st.Delete(ctx, pods, p.Namespace, p.Name, &metav1.Preconditions{UID: &uid})
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
		n.opts.Log.Warn("fake node: delete pod", "pod", p.Namespace+"/"+p.Name, "err", err)
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

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// setExited marks a running pod's containers terminated with code.
func setExited(p *corev1.Pod, code int32) {
	now := metav1.Now()
	p.Status.Phase = corev1.PodSucceeded
	reason := "Completed"
	if code != 0 {
		p.Status.Phase, reason = corev1.PodFailed, "Error"
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason, StartedAt: *p.Status.StartTime, FinishedAt: now,
			}},
		})
	}
	for i := range p.Status.Conditions {
		if t := p.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].Reason = "PodCompleted"
		}
	}
}
