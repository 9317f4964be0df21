// Package health is the one set of rules that tells how healthy an object
// is, from its spec and status alone: pure functions of an object, shared
// by the reconciler's SyncHealthController, which rolls the health of a Git
// source's objects up into its Sync, and by gitsync, which gates on the
// health of what it applied. The rules are a package of their own because
// gitsync may not import the reconciler.
//
// The statuses are Argo CD's, from best to worst (Worse, RollUp):
//
//   - Healthy: the object does what its spec asks. Kinds without a rule
//     are Healthy when they exist.
//   - Suspended: paused on purpose (a paused Deployment, a suspended Job or
//     CronJob).
//   - Unsupported: keelson's own. keelson stores the object but does not
//     act on its kind yet (internal/support's list), so nothing it asks for
//     happens; the message is the list's sentence. Argo CD's Unknown does
//     not fit: it means a health check failed, and ranks worst; here the
//     cause is known and lasts until keelson learns the kind. It ranks
//     above Suspended, so that a source holding such an object is never
//     "every object is healthy", and below Progressing, Missing and
//     Degraded, so that a roll-up shows what is changing or broken first.
//   - Progressing: not there yet, but moving (a rollout, pods starting, a
//     Service waiting for its cluster IP or a node port).
//   - Missing: declared in Git, absent from the cluster.
//   - Degraded: failed or stuck (a deadline exceeded, pods crash looping, a
//     Service whose IPAllocated condition is False).
//   - Unknown: health cannot be told.
//
// Of gives one object's health; RollUp combines several, the worst with its
// message; OfObjects reads declared objects from the store and does both.
// A watcher that keeps objects in caches watches Kinds, the kinds with a
// rule, and only needs to know whether objects of other kinds exist
// (Present):
//
//	h := health.Of(deployment)
//	if h.Status != health.Healthy {
//		fmt.Printf("%s: %s\n", h.Status, h.Message) // Progressing: Waiting for rollout to finish: ...
//	}
package health
