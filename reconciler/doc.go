// Package reconciler is keelson's control loop: the controller runtime
// (informers over store watches, work queues, leader election, events), the
// controllers that turn declared objects into pods, garbage collection, and
// the health of objects for GitOps status. It never calls containerd: pods
// are run by node agents.
//
// keelson server runs every controller with Run. Several servers may share one
// etcd; one of them is elected and runs the controllers, the others wait and
// take over when its lease runs out:
//
//	st, err := store.Open(ctx, store.Config{DataDir: dir})
//	if err != nil {
//		return err
//	}
//	go reconciler.Run(ctx, st, logger, reconciler.Options{})
//
// # Runtime
//
// Informers are client-go's SharedIndexInformers over the store (list, then
// watch from the list's resourceVersion; on "too old" the Reflector lists
// again; optional resync), with indexes by namespace, owner uid, node name,
// label and "no controller" (adoption candidates). Cached objects are shared:
// DeepCopy before changing one.
//
// A Controller feeds "namespace/name" keys to a Reconciler through client-go's
// rate-limited work queue: duplicate keys collapse, a key is never given to
// two workers, failures back off per key. Reconcile is level-triggered: it
// reads everything again from the caches by key, writes with
// compare-and-swap, and returns an error to retry, a Terminal error to stop
// retrying (after marking the object's condition), or Result.RequeueAfter to
// look again later.
//
// # Controllers
//
//   - ReplicaSet and ReplicationController: exactly spec.replicas pods
//     matching the selector, with adoption, release, expectations (a slow
//     watch never causes double creation) and status.
//   - Deployment: one ReplicaSet per pod template (label pod-template-hash),
//     RollingUpdate within maxSurge/maxUnavailable at every moment, Recreate,
//     paused, progress deadline, revisions (annotation
//     deployment.kubernetes.io/revision on ReplicaSets), history cleanup.
//     A Git revert reuses the old template's ReplicaSet.
//   - GarbageCollector: dependents of deleted owners; see Delete for the
//     orphan and foreground protocols.
//   - NamespaceController: a Namespace with a deletionTimestamp is
//     Terminating until everything in it is gone.
//
// # Health
//
// HealthOf gives an object's health (Healthy, Progressing, Degraded,
// Suspended, Missing) by Argo CD's rules; RollUp combines several, worst
// first.
package reconciler
