package pod

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/registry"
	"github.com/keelson/keelson/agent/runtime"
)

// puller pulls images in the background, so a pod waiting for a large
// image holds no worker: a container's start asks for its image, and the
// pod is synced again when the pull ends. One pull per image runs at a
// time across pods; a pod that wanted it next finds it on the node (or
// pulls with its own credentials, which the registry checks again).
type puller struct {
	rt   runtime.Images
	wake func(types.UID)
	base time.Duration // the first back-off after a failed pull

	mu    sync.Mutex
	locks map[string]*imageLock // by image, while pulls of it start or run
	pulls map[pullKey]*pull     // by pod and container
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

type pullKey struct {
	pod       types.UID
	container string
}

// pull is one container's pull of its image, and what came of it.
type pull struct {
	image          string
	fetched, total atomic.Int64
	done           bool
	err            error
	reported       bool // the failure was shown once as ErrImagePull
	ended          time.Time
	took           time.Duration
	failures       int
}

func newPuller(rt runtime.Images, wake func(types.UID), base time.Duration) *puller {
	return &puller{rt: rt, wake: wake, base: base, locks: map[string]*imageLock{}}
}

// imageState is where a container's image stands: ready with the
// reference to run, or waiting with the reason and message to show.
type imageState struct {
	ref     string
	waiting *corev1.ContainerStateWaiting
	// event is what to record for this step, if anything.
	event *event
}

// ensure makes sure the container's image is on the node, following its
// imagePullPolicy, and starts a pull when one is needed. A node that
// cannot reach a registry still runs an image it has when the policy says
// Always: Kubernetes would fail such a pod, which helps no one on an
// air-gapped machine. A registry that refuses the credentials or does not
// have the image fails the pull, whatever the node has.
func (p *puller) ensure(ctx context.Context, run *podRunner, c *corev1.Container, creds func() ([]registry.Credential, error)) imageState {
	named, err := reference.ParseDockerRef(c.Image)
	if err != nil {
		return waitingImage("InvalidImageName", fmt.Sprintf("image %q: %v", c.Image, err))
	}
	ref := named.String() // busybox → docker.io/library/busybox:latest
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if tagged, ok := named.(reference.Tagged); ok && tagged.Tag() == "latest" {
			policy = corev1.PullAlways
		}
	}
	_, haveErr := p.rt.Image(ctx, ref)
	have := haveErr == nil
	key := c.Name
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := run.pulls[key]
	if pl != nil && pl.image != ref {
		delete(run.pulls, key) // the spec changed: start over
		pl = nil
	}
	if pl != nil && pl.done && pl.err == nil {
		delete(run.pulls, key)
		return imageState{ref: ref, event: &event{corev1.EventTypeNormal, "Pulled",
			fmt.Sprintf("Successfully pulled image %q in %v", c.Image, pl.took.Round(time.Millisecond))}}
	}
	switch {
	case pl != nil && !pl.done:
		// Before the image on the node is looked at: a pull that has
		// stored the image but not yet said so ends with its Pulled event.
		return waitingImage("ContainerCreating", pl.progress(c.Image))
	case policy == corev1.PullNever && !have:
		return waitingImage("ErrImageNeverPull", fmt.Sprintf("container image %q is not present with pull policy of Never", c.Image))
	case policy == corev1.PullNever || (have && policy == corev1.PullIfNotPresent):
		delete(run.pulls, key)
		return imageState{ref: ref}
	case pl == nil:
		return p.startLocked(run, key, ref, c.Image, creds, 0)
	case have && !errors.Is(pl.err, runtime.ErrUnauthorized) && !errors.Is(pl.err, runtime.ErrImageNotFound):
		// The registry could not be reached: run the image the node has,
		// so an air-gapped node keeps working. A registry's refusal is
		// not passed over, or a pod could run a private image another
		// pod's credentials pulled.
		delete(run.pulls, key)
		return imageState{ref: ref}
	case !pl.reported:
		pl.reported = true
		run.waitUntil(pl.ended.Add(backoff(p.base, pl.failures-1)))
		return imageState{
			waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: pl.err.Error()},
			event:   &event{corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, pl.err)},
		}
	}
	if until := pl.ended.Add(backoff(p.base, pl.failures-1)); time.Now().Before(until) {
		run.waitUntil(until)
		msg := fmt.Sprintf("Back-off pulling image %q: %v", c.Image, pl.err)
		return imageState{waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg},
			event: &event{corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.Image)}}
	}
	return p.startLocked(run, key, ref, c.Image, creds, pl.failures)
}

func waitingImage(reason, msg string) imageState {
	return imageState{waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
}

// startLocked starts the pull of ref for the pod's container named key, in
// the pod's runner, which ends it; p.mu is held.
func (p *puller) startLocked(run *podRunner, key, ref, image string, creds func() ([]registry.Credential, error), failures int) imageState {
	pl := &pull{image: ref, failures: failures}
	cs, err := creds()
	if err != nil {
		// A pull secret that cannot be read fails the pull, as the kubelet
		// does, rather than pulling without it.
		pl.failures = failures
		p.finish(pl, err)
		pl.reported = true
		run.pulls[key] = pl
		return imageState{waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()},
			event: &event{corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", image, err)}}
	}
	run.pulls[key] = pl
	lock := p.locks[ref]
	if lock == nil {
		lock = &imageLock{held: make(chan struct{}, 1)}
		p.locks[ref] = lock
	}
	lock.users++
	run.wg.Go(func() { p.run(run.ctx, run.uid, pl, lock, cs) })
	return imageState{waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: pl.progress(image)},
		event: &event{corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", image)}}
}

// imageLock lets one pull of an image run at a time; it is dropped when
// no pull of the image is left, so the map holds only images in flight.
type imageLock struct {
	held  chan struct{} // a token, taken while the image is pulled
	users int           // pulls started and not ended; p.mu guards it
}

// run pulls one image, once no other pull of it runs, and wakes the pod.
func (p *puller) run(ctx context.Context, uid types.UID, pl *pull, lock *imageLock, creds []registry.Credential) {
	defer p.wake(uid)
	defer func() {
		p.mu.Lock()
		if lock.users--; lock.users == 0 {
			delete(p.locks, pl.image)
		}
		p.mu.Unlock()
	}()
	select {
	case lock.held <- struct{}{}:
		defer func() { <-lock.held }()
	case <-ctx.Done():
		p.mu.Lock()
		p.finish(pl, ctx.Err())
		p.mu.Unlock()
		return
	}
	start := time.Now()
	_, err := p.rt.Pull(ctx, pl.image, runtime.PullOptions{Credentials: creds, Progress: func(fetched, total int64) {
		pl.fetched.Store(fetched)
		pl.total.Store(total)
	}})
	p.mu.Lock()
	defer p.mu.Unlock()
	pl.took = time.Since(start)
	p.finish(pl, err)
}

// finish records how a pull ended; p.mu is held.
func (p *puller) finish(pl *pull, err error) {
	pl.done, pl.err, pl.ended = true, err, time.Now()
	if err != nil {
		pl.failures++
	}
}

// progress is the waiting message of a container whose image is pulled.
func (pl *pull) progress(image string) string {
	fetched, total := pl.fetched.Load(), pl.total.Load()
	if total <= 0 {
		return fmt.Sprintf("pulling image %q", image)
	}
	return fmt.Sprintf("pulling image %q: %s of %s", image, bytesOf(fetched), bytesOf(total))
}

// bytesOf is a size for people: 912 B, 3.4 MiB.
func bytesOf(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n)/unit, []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
