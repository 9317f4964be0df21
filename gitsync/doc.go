// Package gitsync turns commits into desired state: it reads sources (a remote
// or local Git repository, a plain directory), loads and validates the
// manifests with package schema, diffs them against the store, applies a
// revision, prunes what left Git, and reports the status of each sync.
//
// Sources (New picks one from Config.Repo):
//
//   - a URL (https://, http://, ssh://, user@host:path, file://) is a
//     RemoteGit: a bare clone in <CacheDir>/<Name>, made at the first sync
//     and fetched afterwards. Each poll lists the remote's refs (one round
//     trip) and fetches only when the ref points at a commit the clone lacks,
//     with a forced refspec, so a force push is synced like any commit. The
//     clone is shallow (depth 1) for a branch or a tag, full for a commit
//     hash. A clone found damaged is deleted, logged and made again.
//     Credentials come from files read at each fetch (Auth): a token sent as
//     the password of user x-access-token, which GitHub and GitLab take, or
//     username:password; over ssh a private key, and a known_hosts file
//     without which ssh is refused. Credentials over plain http go to
//     loopback addresses only;
//   - a path that go-git opens is a LocalGit, read in place;
//   - any other directory is a Dir, synced as it is.
//
// A Git source refuses, with ErrFetch, a revision that lacks Config.Path, so
// a wrong path or ref never reads as "no objects". With VerifyKeysFile, Files
// refuses with ErrVerify a commit that is not signed by one of the armored
// OpenPGP keys in that file; only the commit synced is checked, not its
// ancestors. The cluster is left as it is on every error of a source.
//
// One sync of one revision (Syncer.Apply):
//
//   - every manifest under the path is loaded and validated; if anything is
//     invalid, an object is defined twice, or an object belongs to another
//     sync or to a controller, nothing is written and every problem comes
//     back with its file:line (ErrInvalid, Result.Errors);
//   - the sync's objects are those labelled keelson.dev/source=<name>. An
//     object is created when absent, updated when its spec, labels or
//     annotations differ from Git (a change in Git, or drift in the store),
//     and left alone otherwise, so its resourceVersion stays; .status and the
//     store's metadata are never touched, nor the scheduler's pod binding.
//     A change of a field that cannot change on an existing object (a
//     selector, a Job's template; immutableChanges) is a problem at the
//     object's line, unless the object is annotated
//     keelson.dev/replace-on-change: "true": then it is deleted with the
//     revision's other writes and created again in a transaction after them
//     (Replace; a crash in between leaves it for the next sync to create).
//     With Prune, objects that left Git are deleted, except those annotated
//     keelson.dev/prune: disabled. A revision with no objects that would
//     delete all of them is refused unless AllowEmpty is set;
//   - fields other writers fill in objects from Git stay as they are when
//     Git leaves them empty (owned_fields.go): the scheduler's pod binding;
//     a Service's cluster IP, its families and node ports, which the service
//     allocator gives. With ServiceCIDR and NodePorts set, a revision whose
//     Services the allocator could not serve is refused like an invalid one,
//     at the field's file:line:col (services.go): a cluster IP or node port
//     outside its range, held by another service or the kubernetes and DNS
//     services, or asked for twice; more services or ports to allocate than
//     are free; an IPv6 family, dual stack required or a second cluster IP
//     (the service network is IPv4 only); a cluster IP that changes once
//     allocated (always checked).
//     Objects keelson's control plane made (keelson.dev/control-plane) are
//     never taken over;
//   - written objects carry keelson.dev/revision (the commit that last
//     changed them) and keelson.dev/origin (file:line); namespaced objects
//     without a namespace get TargetNamespace ("default").
//
// Atomicity: a revision whose writes fit in one etcd transaction (MaxTxnOps,
// MaxTxnBytes) lands all at once or not at all, every write compare-and-swap
// on the resourceVersion the diff read. A larger revision is applied in
// stages — creations and updates in Kubernetes' kind order (namespaces,
// quotas, storage, config, services, workloads, the rest), then deletions in
// reverse — under a crash-safe protocol (staged.go): the Sync object records
// the revision as pending before the first stage and clears it after the
// last, and a loop that finds a pending revision other than the one it is
// about to sync applies the pending one to its end first. So after a crash at
// any point the store converges to the interrupted revision, never to a mix
// of two, even when the branch has since moved to an invalid commit.
// Validation always covers the whole revision before the first write.
//
// Order (order.go, sequence.go): objects annotated keelson.dev/wave (an
// integer, 0 when absent) are applied by wave, lowest first, kinds in the
// order above within a wave; before a wave's objects are written, every
// object of the lower waves must be Healthy (internal/health's rules:
// Healthy, Suspended, or Unsupported, which would never change) within
// Config.Timeout, or the revision fails with ErrHealth (a failed Job fails
// it at once). Jobs and Pods annotated keelson.dev/hook are hooks, run and
// waited for, not synced: pre-apply hooks before their wave is written,
// post-apply hooks once everything is written and Healthy, on-failure hooks
// when a hook or a health check fails the revision; a failed hook (ErrHook)
// stops the revision, and the Sync's errors hold its log's tail, read with
// Config.Logs. keelson.dev/hook-delete-policy says when a hook's object goes
// (before-hook-creation by default, hook-succeeded, hook-failed); one that
// does not end within the timeout is deleted. Hooks run only when a
// revision changes objects as Git says, never on a resync of the applied
// revision, and once per revision: a retry after a lost race skips those
// that ran. A revision with waves or hooks is applied in stages under the
// protocol above, the hooks that ran recorded with the pending mark, so
// that the sync finishing it after a crash runs only those still due (and
// waits for one found running). One stopped by a hook or a health check is
// not pending (the next commit is applied, not this one again), keeps what
// it wrote, and is not retried until the source moves (Status.Failed).
// Deletions come after the waves are Healthy. With Config.Wait an attempt succeeds only
// when every object is Healthy; with Config.Rollback a revision that fails a
// hook or a health check after writing is followed by the last revision seen
// Healthy, applied again without its hooks (Status.Failed marks the one that
// failed). Config.DependsOn holds a source back (ErrDependency, looked at
// again every few seconds) until the sources it names are Ready and their
// Sync's health roll-up for the revision they applied passes; cycles and
// unknown names are refused when the sources are loaded.
//
// Notifications (alerts.go, package notification): Syncs.Notify is told of
// every attempt, pending when it starts and success or failure when it ends,
// which a notification.Dispatcher delivers to webhooks, Slack and GitHub or
// GitLab commit statuses (ParseServerConfig's notifications section).
//
// Status: after every attempt a Loop writes the Sync object named after the
// sync (syncs.keelson.dev, api/v1alpha1): conditions Ready, Reconciling and
// Stalled with a reason, the applied and attempted revisions with their
// commits, errors with file:line, the inventory, the last ten attempts and
// drift corrections (status.go); it records an Event and updates the
// Prometheus metrics of Collectors. The reconciler adds the health of the
// inventory to the same object. A revision holding objects of kinds keelson
// stores but does not act on yet (internal/support) is applied, and its
// Ready message and Event name them ("applied revision abc: 2 objects
// keelson does not act on yet: Ingress shop/web, PersistentVolumeClaim shop/data").
//
// Several sources: a server config file (ParseConfigFile, `keelson server
// --config`) lists them, one Config each; NewSyncs builds and runs one Loop
// per source, all writing to one store, each owning the objects labelled with
// its name. A source with Suspend set reads and applies nothing: the store
// keeps its last applied revision until suspend is removed. Syncs.Reload
// swaps in an edited list of sources while running (`keelson server` does on
// SIGHUP), restarting only the syncs whose Config changed. Webhook answers
// POST /hooks/<name> from GitHub (X-Hub-Signature-256, an HMAC of the body)
// or GitLab (X-Gitlab-Token), checked against the source's secret file, by
// making that source poll at once; `keelson sync now` sends the same request.
//
// Several servers: only the leader (store.Lead) runs Syncs.Run, with a
// fenced context, so one process applies at a time. A webhook that reaches
// another server is passed on through the Sync object
// (RequestedAtAnnotation), which the leader follows. A loop that starts
// with no attempt of its own (a restart, a new leader) takes up where the
// Sync object says the sync stood: the revision applied last is not applied
// again until Resync is due, and one that failed validation is not retried.
//
// Plan (plan*.go) is the same diff without the write, between two commits of
// a repository or between a commit and what a cluster's API holds: what a
// pull request would create, change and delete, with field diffs (defaults
// filled, Secret values never shown), what the cluster would do, risk flags
// (a warning kind-not-acted-on for each object of such a kind created or
// changed) and immutable-field errors. For Services it says what they get (cluster IP,
// node ports) and which pods and pod templates they select, flags selectors
// that select nothing, and reports the problems a sync would refuse as
// errors (plan_services.go). Plan.Order lists the waves and hooks a
// revision would run, in order (plan_order.go). Only files whose blobs differ between the two
// commits are decoded and validated. `keelson plan` renders it as text,
// markdown or JSON.
//
// Usage, one sync polling a local repository:
//
//	sch, err := schema.Default()
//	if err != nil {
//		return err
//	}
//	loop, err := gitsync.New(gitsync.Config{
//		Name: "default", Repo: "/srv/deploy", Ref: "main", Path: "cluster",
//		Interval: 30 * time.Second, Prune: true,
//	}, st, sch, schema.NewCache(100_000), log)
//	if err != nil {
//		return err
//	}
//	go loop.Run(ctx) // loop.Trigger() syncs now; loop.Status() reports
package gitsync
