// Package store is the only code in keelson that talks to etcd. It keeps typed
// Kubernetes objects (k8s.io/api structs) as JSON under
// /keelson/registry/<resource>/<namespace>/<name>, with resourceVersion = etcd
// mod revision, and every write a compare-and-swap.
//
// Open starts an embedded etcd under a data dir, or connects to an external
// cluster:
//
//	s, err := store.Open(ctx, store.Config{DataDir: "/var/lib/keelson"})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//
//	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
//	if err := s.Create(ctx, pod); err != nil { // sets uid, resourceVersion, …
//		return err
//	}
//	pod.Labels = map[string]string{"app": "web"}
//	err = s.Update(ctx, pod) // ErrConflict if someone wrote it since
//
//	pods, _ := store.ResourceByName("pods")
//	list, err := s.List(ctx, pods, store.ListOptions{Selector: sel})
//	w, err := s.Watch(ctx, pods, store.WatchOptions{ResourceVersion: list.ResourceVersion})
//
// Changes that must land together go through Txn, in one etcd transaction.
//
// With SetEncryption, Secrets are sealed before they reach etcd
// (XChaCha20-Poly1305 under the keys of package store/encryption) and opened
// when read; CheckEncryptionKeys makes sure a server holds every key the
// others seal with, and Reseal seals again what an older key sealed.
//
// With SetAdmitter, every transaction's writes of the resources an Admitter
// admits pass through it before they are committed: it may set defaults in
// created objects, refuse the transaction (ErrForbidden) and add writes that
// land in the same etcd transaction (a quota's usage, package admission);
// when one of those lost a race, the transaction is built again.
//
// Several processes on one etcd elect a leader with Lead; each write made
// with the context Lead gives the leader carries the term's election key as
// a condition of its transaction, so a leader that lost its lease without
// noticing cannot write over its successor (ErrNotLeader). store is the only
// package that imports etcd's client (internal/archtest holds it there).
// Tests start real etcd servers with package store/etcdtest.
package store
