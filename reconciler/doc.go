// Package reconciler is keelson's control loop: the controller runtime
// (informers over store watches, work queues, leader election, events), the
// controllers that turn declared objects into pods, garbage collection, and
// the roll-up of objects' health into GitOps status. It never calls
// containerd: pods are run by node agents.
//
// keelson server runs every controller with Run. Several servers may share one
// etcd; one of them is elected (store.Lead) and runs the controllers, the
// others wait and take over when its lease runs out. Every write of a term
// is fenced by its election key, so a deposed leader's writes are refused
// (store.ErrNotLeader). keelson server runs the controllers and the Git
// syncs in one such term; every server announces itself (AnnounceServer):
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
// look again later. Every controller and its queue export controller-runtime's
// metrics under its name (keelson_controller_*, keelson_workqueue_*; see
// Collectors), so a slow or stuck controller shows on /metrics.
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
//   - DaemonSetController: one pod of a DaemonSet on every node its
//     template accepts (node selector, required node affinity, taints with
//     the daemon tolerations Kubernetes adds), bound by the controller with
//     the metadata.name node affinity; RollingUpdate (maxUnavailable,
//     maxSurge) and OnDelete by a controller-revision-hash label of the
//     template; failed pods replaced; status as kubectl shows it.
//   - StatefulSetController: a StatefulSet's pods as ordinals NAME-i with
//     their own hostname in the subdomain of its service, made in order
//     once the one before is Running and available (OrderedReady) or at
//     once (Parallel), removed from the highest ordinal down, rolled from
//     the highest ordinal down to the partition (maxUnavailable at a time;
//     an old pod that is not available replaced at once), OnDelete; its
//     templates kept as ControllerRevisions; a claim per ordinal and claim
//     template, owned by set or pod as persistentVolumeClaimRetentionPolicy
//     says. Pods are deleted by marking, so an ordinal's name is free only
//     once its node agent has stopped it: never two pods of one ordinal.
//   - PVBinder: a PersistentVolumeClaim bound to the smallest fitting
//     PersistentVolume (class, default class, volume mode, access modes,
//     capacity, selector, volumeName, a claimRef set aside for it), both
//     sides in one transaction; WaitForFirstConsumer claims bind once the
//     scheduler has chosen a node, to a volume reachable from it; Released
//     volumes kept or deleted by their reclaim policy; Lost claims.
//   - Scheduler, for claims: a pod waits until its claims are bound, then
//     goes where its volumes are; for a claim of a WaitForFirstConsumer
//     class it chooses a node with room (local-path capacity, counted) and
//     writes it on the claim (volume.kubernetes.io/selected-node).
//   - ControlPlaneServicesController makes the default local-path
//     StorageClass when none of that name exists.
//   - EphemeralController: the claim "<pod>-<volume>" of each ephemeral
//     volume, owned by its pod, so the garbage collector deletes it with it.
//   - PVCProtection: the kubernetes.io/pvc-protection finalizer on every
//     claim, removed from one being deleted once no running pod uses it.
//   - JobController: pods from a Job's template up to parallelism until
//     completions succeed (Indexed: each index once, carried in the pod's
//     name, hostname, annotation, label and JOB_COMPLETION_INDEX); failed
//     pods replaced after a delay doubled per failure in a row; the Job
//     fails at backoffLimit, backoffLimitPerIndex/maxFailedIndexes,
//     activeDeadlineSeconds or a pod failure policy's FailJob rule, and
//     succeeds by completions or a success policy, first with the interim
//     condition (FailureTarget, SuccessCriteriaMet), then, once no pod
//     runs, Failed or Complete. Finished pods are counted in two steps (the
//     job-tracking finalizer and status.uncountedTerminatedPods), so none
//     is lost or counted twice across a crash. Pods are found by owner, not
//     by spec.selector. Past ttlSecondsAfterFinished the pods are deleted
//     and the Job kept: deleted, it would come back from Git and run again.
//   - CronJobController: a Job at each time of a CronJob's schedule (in
//     its timeZone), named by the time's minute so that none runs twice;
//     concurrency policies Allow, Forbid and Replace; a starting deadline;
//     after downtime only the most recent missed time, with a warning past
//     100 missed; history limits; suspend. Its clock is injected
//     (CronJobOptions.Clock) so that tests need no waiting.
//   - HPAController: HorizontalPodAutoscalers (autoscaling/v2) scale
//     Deployments, ReplicaSets and StatefulSets from the pods' CPU and
//     memory (a PodMetricsSource, the API's metrics), with upstream's
//     replica calculator, behavior (stabilization windows, rate policies),
//     conditions and Events. Its clock is injected (HPAOptions.Clock).
//   - QuotaController: counts a ResourceQuota that is new or whose limits
//     changed (package admission keeps status.used exact after that).
//   - GarbageCollector: dependents of deleted owners; see Delete for the
//     orphan and foreground protocols.
//   - NamespaceController: a Namespace with a deletionTimestamp is
//     Terminating until everything in it is gone.
//   - Scheduler: binds pods without spec.nodeName whose schedulerName is
//     empty, default-scheduler or keelson. Filters (in kube-scheduler's
//     order): node Ready, cordon, NoSchedule/NoExecute taints, nodeSelector
//     and required node affinity, host ports, CPU/memory/ephemeral
//     storage/pod count against allocatable minus bound pods (init
//     containers and sidecars counted as Kubernetes counts them), required
//     pod (anti-)affinity, topology spread with DoNotSchedule. Scores: least
//     allocated, balanced, preferred node and pod affinity, PreferNoSchedule,
//     spreading of a controller's pods over nodes and zones, image locality.
//     Decisions come from an in-memory snapshot of nodes and bound pods kept
//     by the informers, with a decided pod "assumed" on its node until the
//     binding is seen; bindings (spec.nodeName and PodScheduled=True, by
//     compare-and-swap) that wait at the same moment share one transaction.
//     A pod that fits nowhere gets PodScheduled=False, reason Unschedulable,
//     with kube-scheduler's message ("0/5 nodes are available: 3
//     Insufficient cpu, ...") and a FailedScheduling event, and waits until
//     a node changes in a way that matters or a bound pod goes away.
//   - NodeLifecycleController: a node whose lease (kube-node-lease) is not
//     renewed for the grace period becomes Ready=Unknown and is tainted
//     node.kubernetes.io/unreachable:NoExecute; its pods are marked for
//     deletion, at a bounded rate, when their toleration of that taint (300 s
//     by default) runs out, and stay Terminating until the node's agent
//     removes them or the node is deleted (the garbage collector leaves a
//     marked pod bound to an existing node to its agent); it is untainted
//     when back. It also gives nodes without one a
//     spec.podCIDR from the cluster CIDR, released when the node is deleted.
//   - NodePolicyController: node settings from Git. Nobody writes to the
//     API, so labels, taints and cordoning (spec.unschedulable) of nodes are
//     declared as NodePolicies (keelson.dev/v1alpha1), each matching nodes
//     by name (spec.nodeNames) or by a selector over the labels a node has
//     of its own (spec.nodeSelector; labels set by policies are not
//     matched, so policies do not chain). Every node gets what all its
//     matching policies set, written by compare-and-swap and only when it
//     differs. What policies set is recorded on the node in the annotation
//     keelson.dev/node-policy-applied (label keys, taint key:effect, whether
//     they cordoned it), and only that is taken back when the node stops
//     matching or a policy changes or leaves Git: the agent's labels, the
//     node lifecycle controller's taints and a cordon that was there before
//     stay. Two policies setting one key to different values on a node:
//     the first by name applies; a key the node already has of its own
//     keeps its value. Either way the policies involved report Ready=False,
//     reason Conflict, with a message naming the node, the key and both
//     sides. Status: the nodes matched, observedGeneration, Ready (Applied,
//     Progressing, Conflict). A cordoned node keeps its pods; the scheduler
//     places no new pod there ("node(s) were unschedulable"). A policy with
//     drain cordons its nodes and evicts their pods (not DaemonSets' or
//     static pods), each in one transaction with the disruption it takes
//     from its PodDisruptionBudget, and only while the budget allows;
//     condition Drained says what is left and what holds it.
//   - DisruptionController: PodDisruptionBudgets' status as Kubernetes'
//     disruption controller keeps it (expected, desired and current
//     healthy pods, disruptionsAllowed, disruptedPods, DisruptionAllowed).
//   - EndpointSliceController: the discovery.k8s.io/v1 EndpointSlices of
//     every Service with a selector (ExternalName aside): one endpoint per
//     selected pod with an IPv4 address, not finished, with ready, serving
//     and terminating conditions, node, zone (the node's
//     topology.kubernetes.io/zone), targetRef and, when the pod's subdomain
//     is the service, its hostname. Each service port's targetPort is
//     resolved per pod (a name through its containers' and sidecars' ports),
//     pods of different resolved ports go to different slices, at most 100
//     endpoints a slice. Because every node turns each written slice into
//     packet rules, writes are the fewest a change allows: unchanged
//     endpoints stay untouched in their slice, changed ones are replaced in
//     place, new ones fill slices with room first; a tracker of the
//     controller's own writes keeps a lagging cache from making duplicates.
//     The service's keelson.dev/EndpointsReady condition says whether it has
//     ready endpoints, or why not (NoPodsSelected, NoMatchingPort,
//     NoReadyEndpoints); it is written only when it changes.
//   - EndpointsController: the core/v1 Endpoints object of the same
//     services for older clients (addresses and notReadyAddresses by port
//     set, at most 1,000 then truncated with annotation
//     endpoints.kubernetes.io/over-capacity), never one from Git.
//   - EndpointSliceMirroringController: EndpointSlices mirrored from the
//     Endpoints object of a selector-less service when it comes from Git,
//     so the node proxy and cluster DNS, which read only slices, see it.
//     Services labelled keelson.dev/control-plane are left to the control
//     plane by all three.
//   - ServiceIPController: cluster IPs from the service CIDR
//     (Options.Services) and node ports from the node port range. An
//     address is reserved by an IPAddress (networking.k8s.io/v1, named by
//     the address, spec.parentRef the service) created in the same
//     transaction as the Service's compare-and-swap update, so it is never
//     given twice, across crashes, restarts and racing controllers. New
//     addresses are picked at random above the CIDR's static band (kept
//     for addresses written in Git), in it only when the rest is full,
//     never the kubernetes or DNS service's. An address or node port
//     written in Git is honoured when free; otherwise, as when a range is
//     full, the service's keelson.dev/IPAllocated condition is False with
//     reason ClusterIPTaken, NotInServiceCIDR, ServiceCIDRFull,
//     NodePortTaken, NotInNodePortRange or NodePortRangeFull, a Warning
//     event says the same, and the service waits until something is given
//     back. Node ports (one number for 53/TCP and 53/UDP of one service)
//     are kept in the leader's memory, rebuilt from the Services when it
//     starts. ExternalName and headless services get no address; a
//     deleted service, or one that changed type, gives back what it no
//     longer needs; a repair pass deletes reservations keelson made whose
//     service is gone or holds another address. Only clusterIP(s),
//     ipFamilies, ipFamilyPolicy, nodePorts and its own condition are
//     ever written.
//   - ControlPlaneServicesController: the kube-system namespace, the
//     kubernetes service (the API, on the CIDR's first address) and
//     kube-dns (cluster DNS, on its tenth), their EndpointSlices and
//     Endpoints with an endpoint per server whose Lease in kube-system is
//     live (AnnounceServer; the leader's own advertise address when none
//     is; none when unset) on the leader's API and DNS ports, and the
//     ServiceCIDR object, all labelled keelson.dev/control-plane, put back
//     when deleted or changed. A server that dies leaves when its Lease
//     runs out. It also makes, when absent, the local-path StorageClass
//     and keelson's IngressClass (internal/ingressclass), both the
//     default of their kind.
//   - IngressStatusController: the status.loadBalancer of the Ingresses
//     the agents' ingress proxies serve lists the addresses of the Ready
//     nodes whose proxy listens (annotation keelson.dev/ingress-proxy).
//
// # Traffic from outside: the cloud provider
//
// Package cloud is the cloud provider interface (LoadBalancer, Instances,
// Routes), as k8s.io/cloud-provider's; Options.CloudProvider names the
// registered provider each leader term builds (package cloud/local makes
// LoadBalancer services work on bare machines from an address pool or the
// nodes' addresses). Three controllers drive it, with retries and Events:
//
//   - the service load balancer controller (always: with no provider it
//     tells LoadBalancer services so, in their keelson.dev/LoadBalancer
//     condition) ensures, updates and deletes each service's load balancer
//     behind the service.kubernetes.io/load-balancer-cleanup finalizer and
//     writes status.loadBalancer;
//   - the cloud node controller (a provider with Instances) labels nodes
//     with their zone and region, sets their providerID, taints those
//     shut down and deletes those whose machine is gone;
//   - the route controller (a provider with Routes) keeps a route per
//     node's pod CIDR.
//
// # Health
//
// The health rules (Argo CD's statuses, and Unsupported for a kind keelson
// stores but does not act on yet) live in internal/health, which gitsync
// shares. The SyncHealthController rolls the health of every object in a
// Git source's inventory up into its Sync object (status.health and the
// Healthy condition, beside gitsync's Ready), recomputing it when one of
// the source's objects of a kind with a rule (health.Kinds) changes: those
// from the informers' caches, other kinds by one labelled list each, which
// only tells whether they exist. The objects listed in the Sync's health
// name every Unsupported one.
package reconciler
