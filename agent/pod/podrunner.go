package pod

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// podRunner is one pod's: what its steps remember from one sync to the
// next, and the goroutines they started (probe workers, image pulls),
// which end with it. Sync and Kill of a pod never run at once (the agent's
// queue gives a pod to one worker at a time), so its maps need no lock;
// what the goroutines report goes through their own (probes, pull).
type podRunner struct {
	uid types.UID
	// startErrors says why a container could not start, by container id:
	// the runtime keeps such a container as created, without the reason.
	startErrors map[string]string
	// probes are the probe workers of running containers, by container id.
	probes map[string]*probes
	// pulls are the image pulls of the pod's containers, by container name:
	// under way, or ended and waiting to be seen (with the back-off of a
	// failure).
	pulls map[string]*pull
	// tokens are the service account tokens of the pod's volumes, kept
	// until their rotation is due (token.go).
	tokens map[tokenKey]token
	// wakeAt is when a back-off the last sync waited on ends (a restart, a
	// pull) or a token of its volumes is due for rotation, so the pod is
	// synced again then; zero when none.
	wakeAt time.Time
	// setUpFailures counts the syncs in a row whose sandbox or volumes
	// failed, for their back-off.
	setUpFailures int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// podRunner returns the pod's runner, made on its first sync.
func (r *Runner) podRunner(uid types.UID) *podRunner {
	r.mu.Lock()
	defer r.mu.Unlock()
	pr := r.pods[uid]
	if pr == nil {
		ctx, cancel := context.WithCancel(context.Background())
		pr = &podRunner{uid: uid, startErrors: map[string]string{}, probes: map[string]*probes{}, pulls: map[string]*pull{}, tokens: map[tokenKey]token{}, ctx: ctx, cancel: cancel}
		r.pods[uid] = pr
	}
	return pr
}

// dropPod stops the pod's runner and forgets it: its goroutines have ended
// when it returns.
func (r *Runner) dropPod(uid types.UID) {
	r.mu.Lock()
	pr := r.pods[uid]
	delete(r.pods, uid)
	r.mu.Unlock()
	if pr != nil {
		pr.stop()
	}
}

// stop ends the runner's goroutines and waits for them, and forgets the
// pod's tokens.
func (pr *podRunner) stop() {
	pr.cancel()
	pr.wg.Wait()
	// No lock: like every map of the runner, tokens is touched only by the
	// pod's syncs and its stop, which never run at once (Kill runs in the
	// pod's worker; Close after the workers have stopped).
	clear(pr.tokens)
}

// Close stops every pod's probe workers and pulls and waits for them;
// containers keep running, and a new runner picks them up.
func (r *Runner) Close() {
	r.mu.Lock()
	pods := r.pods
	r.pods = map[types.UID]*podRunner{}
	r.mu.Unlock()
	for _, pr := range pods {
		pr.stop()
	}
}

// WakeAfter is how long until a back-off the pod's last sync waited on
// ends (a crashed container's restart, an image pull's retry) or a token
// of its volumes is due for rotation, when the pod should be synced again;
// 0 when it waits on none.
func (r *Runner) WakeAfter(uid types.UID) time.Duration {
	r.mu.Lock()
	pr := r.pods[uid]
	r.mu.Unlock()
	if pr == nil || pr.wakeAt.IsZero() {
		return 0
	}
	return max(pr.wakeAt.Sub(r.cfg.Clock.Now()), time.Millisecond)
}

// waitUntil notes a back-off's end, the earliest of the sync's.
func (pr *podRunner) waitUntil(t time.Time) {
	if pr.wakeAt.IsZero() || t.Before(pr.wakeAt) {
		pr.wakeAt = t
	}
}

// Pods is how many pods have a runner: those synced and not yet killed.
func (r *Runner) Pods() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pods)
}
