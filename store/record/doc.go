// Package record writes Kubernetes Events (core/v1) about stored objects, for
// every keelson component that reports what it did: the controllers, the
// scheduler, gitsync. Repeats of an event fold into one Event whose count
// goes up; writes happen in the background and never hold the caller up.
//
//	rec := record.New(st, "gitsync", log)
//	go rec.Run(ctx)
//	rec.Eventf(obj, corev1.EventTypeWarning, "ValidationFailed", "%d problems", n)
//
// ExpireEvents deletes old Events, as Kubernetes' event TTL does.
package record
