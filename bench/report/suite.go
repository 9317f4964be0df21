package main

// suite is every benchmark `make bench` runs, grouped as BENCHMARKS.md shows
// them, each figure with the goal and anchor its issue names. Add a figure
// here when a benchmark is added.
var suite = []section{
	{
		name: "store", title: "Store against raw etcd", pkg: "./store/",
		bench: "Create|Get$|List10k|WatchLatency|Secrets", args: []string{"-test.benchmem"},
		figures: []figure{
			{bench: "Create/keelson", unit: "sec/op", what: "Create a pod (~1.5 KB)", goal: "≤ 1.3× raw etcd", anchor: "Create/etcd below"},
			{bench: "Create/etcd", unit: "sec/op", what: "raw etcd: the same create-if-absent transaction"},
			{bench: "Get/keelson", unit: "sec/op", what: "Get a pod", goal: "≤ 1.3× raw etcd"},
			{bench: "Get/etcd", unit: "sec/op", what: "raw etcd: get of the key"},
			{bench: "List10k/keelson-shared", unit: "sec/op", what: "List 10,000 pods, read-only objects", goal: "≤ 1.5× raw etcd"},
			{bench: "List10k/keelson", unit: "sec/op", what: "List 10,000 pods, private copies", goal: "≤ 1.5× raw etcd"},
			{bench: "List10k/keelson-cold", unit: "sec/op", what: "List 10,000 pods, every one decoded anew"},
			{bench: "List10k/etcd", unit: "sec/op", what: "raw etcd: range read of the same keys"},
			{bench: "WatchLatency/keelson", unit: "sec/op", what: "Watch: write to event received"},
			{bench: "WatchLatency/etcd", unit: "sec/op", what: "raw etcd: the same watch"},
			{bench: "Secrets/create/sealed", unit: "sec/op", what: "Create a Secret (~1 KB of data) encrypted in etcd (XChaCha20-Poly1305)", anchor: "Secrets/create/plain below"},
			{bench: "Secrets/create/plain", unit: "sec/op", what: "the same Secret stored plain"},
			{bench: "Secrets/list1k-cold/sealed", unit: "sec/op", what: "List 1,000 such Secrets, every one decrypted and decoded anew", anchor: "Secrets/list1k-cold/plain below"},
			{bench: "Secrets/list1k-cold/plain", unit: "sec/op", what: "the same, stored plain"},
		},
	},
	{
		name: "schema", title: "Schema validation", pkg: "./schema/",
		bench: "ValidateDeployment$|LoadRepo10k", args: []string{"-test.benchmem"},
		figures: []figure{
			{bench: "ValidateDeployment", unit: "sec/op", what: "Validate one Deployment, one goroutine"},
			{bench: "LoadRepo10k", unit: "docs/s", what: "Cold validation of a 10,000-document repository", goal: "≥ 2,000 docs/s on 2 cores", anchor: "kubeconform ~7,500 resources/s on 4 cores"},
			{bench: "LoadRepo10kOneFileChanged", unit: "sec/op", what: "Re-validate it after a one-file change"},
		},
	},
	{
		name: "apiserver", title: "API server", pkg: "./apiserver/",
		bench: "List10kPods|GetPod|WatchFanout100|AuthenticatedGet", args: []string{"-test.benchtime", "300x"},
		figures: []figure{
			{bench: "List10kPods/api-consistent", unit: "p50-ms", what: "List 10,000 pods, consistent, p50", goal: "≤ 1.5× raw etcd", anchor: "Kubernetes SLO: p99 ≤ 30 s"},
			{bench: "List10kPods/api-consistent", unit: "p99-ms", what: "List 10,000 pods, consistent, p99"},
			{bench: "List10kPods/raw-etcd-range", unit: "p50-ms", what: "raw etcd: range read of the same keys, p50"},
			{bench: "GetPod/api", unit: "p50-ms", what: "Get one pod, p50", anchor: "Kubernetes SLO: p99 ≤ 1 s"},
			{bench: "GetPod/raw-etcd-get", unit: "p50-ms", what: "raw etcd: get of the key, p50"},
			{bench: "WatchFanout100/api", unit: "p99-ms", what: "Watch fan-out to 100 watchers, p99", goal: "p99 ≤ 50 ms"},
			{bench: "WatchFanout100/raw-etcd", unit: "p99-ms", what: "raw etcd: 100 watches, p99"},
			{bench: "AuthenticatedGet/serviceaccount-token", unit: "p50-ms", what: "Get one pod from the watch cache with a pod's ServiceAccount token, RBAC deciding (RoleBinding of view), p50",
				goal: "≤ 1.1× a static token", anchor: "AuthenticatedGet/static-token below"},
			{bench: "AuthenticatedGet/static-token", unit: "p50-ms", what: "the same with a static token of system:masters, p50"},
			{bench: "AuthenticatedGet/serviceaccount-token-verified-each-time", unit: "p50-ms", what: "the ServiceAccount token with its signature checked on every request (ECDSA P-256), p50"},
		},
	},
	{
		name: "controllers", title: "Controllers", pkg: "./reconciler/",
		bench: "DeploymentsAppear", args: []string{"-test.benchtime", "1x"},
		figures: []figure{
			{bench: "DeploymentsAppear", unit: "pods/s", what: "1,000 Deployments × 10 replicas: pods created per second", goal: "≥ 1,000 pods/s", anchor: "kube-controller-manager defaults to 20 QPS towards its apiserver"},
			{bench: "DeploymentsAppear", unit: "MB-heap", what: "controller heap with everything cached"},
		},
	},
	{
		name: "scheduler", title: "Scheduler", pkg: "./reconciler/",
		bench: "Schedule", args: []string{"-test.benchtime", "1x"},
		figures: []figure{
			{bench: "Schedule/5000Nodes_10000Pods", unit: "pods/s", what: "10,000 pods onto 5,000 nodes, bound per second", goal: "≥ 1,000 pods/s", anchor: "kube-scheduler CI floor 680 pods/s"},
			{bench: "Schedule/5000Nodes_10000Pods", unit: "MB-heap", what: "control-plane heap after it"},
			{bench: "Schedule/5000Nodes_10000Pods_AntiAffinity", unit: "pods/s", what: "the same with required anti-affinity", goal: "≥ 1,000 pods/s", anchor: "kube-scheduler at 30,000 nodes ≈ 300 pods/s"},
		},
	},
	{
		name: "workloads", title: "DaemonSets and CronJobs", pkg: "./reconciler/",
		bench: "DaemonSet5000Nodes|CronJobs1000", args: []string{"-test.benchtime", "5x"},
		figures: []figure{
			{bench: "DaemonSet5000Nodes", unit: "pods/s", what: "a DaemonSet on 5,000 simulated nodes: pods created and bound per second until every node has one", goal: "≥ 1,000 pods/s",
				anchor: "scheduler_perf's DaemonSet floor: 1,100 pods/s at 15,000 nodes"},
			{bench: "DaemonSet5000Nodes", unit: "s-all-bound", what: "the same, time until every node has its pod"},
			{bench: "CronJobs1000", unit: "%core", what: "1,000 CronJobs of every minute on the injected clock: CPU of the controller process per minute, in % of one core (1,000 Jobs started a minute)", goal: "< 5% of one core"},
			{bench: "CronJobs1000", unit: "cpu-ms/min", what: "the same in CPU milliseconds per minute"},
		},
	},
	{
		name: "autoscaler", title: "HorizontalPodAutoscaler", pkg: "./reconciler/",
		bench: "HPAPass", args: []string{"-test.benchtime", "5x"},
		figures: []figure{
			{bench: "HPAPass", unit: "cpu-s/pass", what: "1,000 HorizontalPodAutoscalers of Deployments of 3 pods, each computed once (a sync period's pass, nothing to write): CPU of the process per pass", goal: "≤ 1 s"},
			{bench: "HPAPass", unit: "sec/op", what: "the same, wall time of a pass"},
		},
	},
	{
		name: "quota", title: "Quotas at sync", pkg: "./gitsync/",
		bench: "FirstSyncQuota", args: []string{"-test.benchtime", "5x"},
		figures: []figure{
			{bench: "FirstSyncQuota/quotas=every-namespace", unit: "sec/op", what: "first sync of 10,000 objects in ten namespaces, each with a ResourceQuota and a LimitRange, on a store with admission (the revision checked, every write admitted)",
				goal: "≤ 1.1× without quotas", anchor: "FirstSyncQuota/quotas=none below"},
			{bench: "FirstSyncQuota/quotas=none", unit: "sec/op", what: "the same objects without quotas, on a store without admission"},
			{bench: "FirstSyncQuota/quotas=every-namespace", unit: "cpu-ms/op", what: "with quotas: CPU of the process (sync and embedded etcd)", goal: "≤ 1.1× without quotas"},
			{bench: "FirstSyncQuota/quotas=none", unit: "cpu-ms/op", what: "without quotas: CPU of the process"},
		},
	},
	{
		name: "admission", title: "Admission of writes", pkg: "./admission/",
		bench: "CreatePods", args: []string{"-test.benchtime", "50x"},
		figures: []figure{
			{bench: "CreatePods/txn100/admitted-quota-limits", unit: "sec/op", what: "a controller's transaction of 100 pod creates, in a namespace with a ResourceQuota and a LimitRange (defaults set, the quota's status written in the transaction)",
				anchor: "CreatePods/txn100/plain below"},
			{bench: "CreatePods/txn100/admitted", unit: "sec/op", what: "the same with admission in a namespace without quotas or limits"},
			{bench: "CreatePods/txn100/plain", unit: "sec/op", what: "the same on a store without admission"},
			{bench: "CreatePods/status/admitted-quota-limits", unit: "sec/op", what: "a pod's status write (what agents do most) with a quota in its namespace", anchor: "CreatePods/status/plain below"},
			{bench: "CreatePods/status/plain", unit: "sec/op", what: "the same without admission"},
		},
	},
	{
		name: "endpoints", title: "Service endpoints", pkg: "./reconciler/",
		bench: "EndpointSliceUpdate", args: []string{"-test.benchtime", "200x"},
		figures: []figure{
			{bench: "EndpointSliceUpdate", unit: "p50-ms", what: "1,000 services × 10 pods: one pod's readiness flip, status write to EndpointSlice change seen by a watch, p50 (the controllers' part of the path below)"},
			{bench: "EndpointSliceUpdate", unit: "p95-ms", what: "the same, p95"},
			{bench: "EndpointSliceUpdate", unit: "slices/flip", what: "EndpointSlices written per flip", goal: "1"},
		},
	},
	{
		name: "endpoint-rules", title: "Endpoint change to rules in place", pkg: "./test/e2e/",
		bench: "EndpointChangeToRules", args: []string{"-test.benchtime", "200x"}, root: true,
		figures: []figure{
			{bench: "EndpointChangeToRules", unit: "p50-ms", what: "1,000 services × 10 pods: one pod's readiness flip, store write to the node proxy's nftables rules changed in the kernel (controllers, API, informers, proxy), p50",
				anchor: "kube-proxy's nftables mode (GA in Kubernetes 1.33): updates O(changed objects)"},
			{bench: "EndpointChangeToRules", unit: "p95-ms", what: "the same, p95", goal: "p95 ≤ 1 s"},
		},
	},
	{
		name: "proxy", title: "Node proxy", pkg: "./agent/proxy/",
		bench: "ProxyEndpointChange", args: []string{"-test.benchtime", "200x"}, root: true,
		figures: []figure{
			{bench: "ProxyEndpointChange", unit: "p50-ms", what: "1,000 services × 10 endpoints: one endpoint replaced in an EndpointSlice (fake API) to the nftables transaction committed, p50"},
			{bench: "ProxyEndpointChange", unit: "p95-ms", what: "the same, p95"},
			{bench: "ProxyEndpointChange", unit: "initial-sync-ms", what: "first sync of the whole table"},
			{bench: "ProxyEndpointChange", unit: "restart-sync-ms", what: "a new proxier's reconcile of the table the last one left (read back, nothing written)"},
		},
	},
	{
		name: "service-throughput", title: "Throughput through a ClusterIP", pkg: "./test/e2e/",
		bench: "ServiceThroughput", args: []string{"-test.benchtime", "2x"}, root: true,
		figures: []figure{
			{bench: "ServiceThroughput", unit: "podip-MBps", what: "client pod to server pod by the pod IP, 1 GiB a transfer, MB/s by the client's clock"},
			{bench: "ServiceThroughput", unit: "clusterip-MBps", what: "the same by the service's cluster IP (the node proxy's DNAT)"},
			{bench: "ServiceThroughput", unit: "ratio", what: "cluster IP over pod IP, median of transfer pairs run back to back", goal: "≥ 0.9"},
		},
	},
	{
		name: "dns", title: "Cluster DNS", pkg: "./clusterdns/",
		bench: "Query$",
		figures: []figure{
			{bench: "Query/inflight=8", unit: "qps", what: "1,000 services, server alone on one core (GOMAXPROCS 1), 8 queries in flight: queries per second",
				goal: "≥ 20,000 q/s on one core", anchor: "CoreDNS ~33,000 qps on 2 cores"},
			{bench: "Query/inflight=8", unit: "p99-ms", what: "the same, p99 of the time to an answer", goal: "p99 ≤ 5 ms"},
			{bench: "Query/inflight=32", unit: "qps", what: "the same with 32 queries in flight", goal: "≥ 20,000 q/s on one core"},
			{bench: "Query/inflight=32", unit: "p99-ms", what: "the same, p99", goal: "p99 ≤ 5 ms"},
			{bench: "Query/inflight=32", unit: "lost", what: "queries left without an answer for 1 s, 32 in flight"},
		},
	},
	{
		name: "gitsync", title: "Git to etcd", pkg: "./gitsync/",
		bench: "CommitToStore|CommitToEtcdNotify|CommitToEtcdKustomize|PollUnchanged|FirstSync|PlanOneFile", args: []string{"-test.benchtime", "20x"},
		figures: []figure{
			{bench: "CommitToEtcdNotify", unit: "p50-ms", what: "commit to etcd through fsnotify, 1-file change in 10,000 objects, p50 over 20 commits", goal: "p50 ≤ 100 ms",
				anchor: "Argo CD polls every 3 min; users report 4–5 min lags on 800-app monorepos (argo-cd#18969)"},
			{bench: "CommitToEtcdNotify", unit: "p95-ms", what: "the same, p95", goal: "p95 ≤ 250 ms"},
			{bench: "CommitToEtcdKustomize", unit: "p50-ms", what: "commit to etcd through fsnotify, 1-file change in a kustomize overlay of 1,000 objects (the overlay's part holding the change built again), p50 over 20 commits", goal: "p50 ≤ 200 ms",
				anchor: "Argo CD's repo-server: manifest generation is the reported bottleneck of large monorepos (argo-cd#4583, #15763)"},
			{bench: "CommitToEtcdKustomize", unit: "p95-ms", what: "the same, p95"},
			{bench: "CommitToStore/objects=10000", unit: "sec/op", what: "one SyncOnce of a 1-file commit in 10,000 objects, Sync status write included"},
			{bench: "CommitToStore/objects=1000", unit: "sec/op", what: "the same in 1,000 objects"},
			{bench: "FirstSync", unit: "sec/op", what: "first sync of a 10,000-object repository (read, validate, write)", goal: "≤ 10 s",
				anchor: "Flux: 4 m 16 s for 1,000 Kustomizations in its own benchmark"},
			{bench: "PollUnchanged", unit: "sec/op", what: "a poll that finds the applied revision", goal: "≤ 5 ms"},
			{bench: "PlanOneFile", unit: "sec/op", what: "keelson plan of a 1-file change in 10,000 objects", goal: "≤ 1 s"},
		},
	},
	{
		name: "render", title: "Rendering: kustomize and Helm", pkg: "./gitsync/render/",
		bench: "KustomizeOverlay1000|HelmChart200", args: []string{"-test.benchtime", "3x"},
		figures: []figure{
			{bench: "HelmChart200", unit: "sec/op", what: "a 200-object chart rendered from its files, no cache", goal: "≤ 300 ms",
				anchor: "Argo CD's repo-server: manifest generation is the reported bottleneck of large monorepos (argo-cd#4583, #15763)"},
			{bench: "KustomizeOverlay1000/one-file-change", unit: "sec/op", what: "an overlay of a 1,000-object base after a one-file change of the base: the part holding it built again"},
			{bench: "KustomizeOverlay1000/one-file-change-whole", unit: "sec/op", what: "the same change with the overlay built whole (kustomize's own build, as before parts)"},
			{bench: "KustomizeOverlay1000/cold", unit: "sec/op", what: "the same overlay built in parts with no cache"},
			{bench: "KustomizeOverlay1000/cached", unit: "sec/op", what: "the same overlay when no input changed: its inputs checked, nothing built"},
		},
	},
	{
		name: "podstart", title: "Pod start on containerd", pkg: "./test/e2e/",
		bench: "PodStart", args: []string{"-test.benchtime", "5x"}, root: true,
		figures: []figure{
			{bench: "PodStart/pod/1", unit: "each-p50-ms", what: "one pod: bound to Running, p50", goal: "≤ 3× raw containerd"},
			{bench: "PodStart/containerd/1", unit: "each-p50-ms", what: "raw containerd: create and start one container, p50"},
			{bench: "PodStart/pod/30", unit: "all-p50-ms", what: "30 pods at once, all Running, p50", goal: "≤ 2 s", anchor: "Kubernetes pod start-up SLO p99 ≤ 5 s"},
			{bench: "PodStart/containerd/30", unit: "all-p50-ms", what: "raw containerd: 30 containers created and started one after another, all running"},
			{bench: "PodStart/containerd-parallel/30", unit: "all-p50-ms", what: "raw containerd: 30 containers, four at a time (as the pod workers), all running: the floor for 30 pods at once"},
		},
	},
	{
		name: "agent-steady", title: "The agent at rest: containerd and API requests", pkg: "./test/e2e/",
		bench: "AgentSteadyState", args: []string{"-test.benchtime", "1x"}, root: true,
		figures: []figure{
			{bench: "AgentSteadyState/pods/10", unit: "calls/min/pod", what: "containerd requests per minute and pod, 10 pods at rest"},
			{bench: "AgentSteadyState/pods/110", unit: "calls/min/pod", what: "the same with 110 pods", goal: "independent of the pod count"},
			{bench: "AgentSteadyState/pods/10", unit: "api-req/min/pod", what: "API requests per minute and pod, 10 pods at rest, each mounting a ConfigMap"},
			{bench: "AgentSteadyState/pods/110", unit: "api-req/min/pod", what: "the same with 110 pods"},
			{bench: "AgentSteadyState/pods/110", unit: "cpu-%", what: "CPU of the agent with the API server and etcd in one process, 110 pods at rest (a bound on the agent's)"},
		},
	},
	{
		name: "agent-cpu", title: "The agent at rest: its process", pkg: "./cmd/keelson/",
		bench: "AgentProcessCPU", args: []string{"-test.benchtime", "1x"}, root: true,
		figures: []figure{
			{bench: "AgentProcessCPU/pods/10", unit: "cpu-%", what: "keelson agent process, 10 pods at rest: CPU in % of one core"},
			{bench: "AgentProcessCPU/pods/110", unit: "cpu-%", what: "the same with 110 pods", goal: "≤ 2% of a core"},
			{bench: "AgentProcessCPU/pods/110", unit: "MB-rss", what: "its resident memory with 110 pods", anchor: "k3s' agent at 275 MB resident"},
		},
	},
	{
		name: "commit-to-running", title: "Commit to pods Running", pkg: "./test/e2e/",
		bench: "CommitToRunning", args: []string{"-test.benchtime", "20x"}, root: true,
		figures: []figure{
			{bench: "CommitToRunning", unit: "p50-ms", what: "git commit of a 3-replica Deployment → all 3 pods Running, p50 over 20 commits", goal: "p50 ≤ 1 s",
				anchor: "Argo CD's default poll: 3 min; Kubernetes pod start-up SLO alone: p99 ≤ 5 s"},
			{bench: "CommitToRunning", unit: "p95-ms", what: "the same, p95"},
		},
	},
	{
		name: "failover", title: "Leader fail-over", pkg: "./test/cluster/",
		bench: "LeaderFailover", args: []string{"-test.benchtime", "1x"}, root: true,
		figures: []figure{
			{bench: "LeaderFailover", unit: "p50-ms", what: "3 servers on a 3-member etcd cluster (hosts of test/cluster), default 10 s lease: SIGKILL of the leader → another leads (controllers and syncs start), p50 of 10 kills", goal: "≤ 15 s",
				anchor: "kube-controller-manager's default lease: 15 s"},
			{bench: "LeaderFailover", unit: "max-ms", what: "the same, slowest of the 10"},
		},
	},
	{
		name: "scale", title: "5,000 simulated nodes, 150,000 pods", pkg: "./test/cluster/",
		bench: "HollowScale", args: []string{"-test.benchtime", "1x", "-test.timeout", "3h"}, root: true,
		figures: []figure{
			{bench: "HollowScale", unit: "scheduled-pods/s", what: "one commit of 1,500 Deployments × 100 pods onto 5,000 simulated nodes (keelson agent --runtime simulated) renewing their leases: pods bound per second", goal: "≥ 1,000 pods/s", anchor: "kube-scheduler CI floor 680 pods/s"},
			{bench: "HollowScale", unit: "created-pods/s", what: "the same: pods created by the controllers per second"},
			{bench: "HollowScale", unit: "running-pods/s", what: "the same: pods reported Running per second (the simulated nodes' status writes)"},
			{bench: "HollowScale", unit: "commit-to-all-running-s", what: "commit → all 150,000 pods Running, s"},
			{bench: "HollowScale", unit: "MB-rss", what: "server resident memory with it all running (etcd is a process of its own)", anchor: "k3s: 2 CPU / 4 GB for up to 350 agents"},
			{bench: "HollowScale", unit: "MB-rss-per-10k-pods", what: "the server's growth per 10,000 pods"},
			{bench: "HollowScale", unit: "get-p99-ms", what: "then, with the leases' traffic: get one pod, p99 of 200", goal: "p99 ≤ 1 s", anchor: "Kubernetes SLO: single-object reads p99 ≤ 1 s"},
			{bench: "HollowScale", unit: "mutate-p99-ms", what: "a node's lease update, p99 of 200", goal: "p99 ≤ 1 s", anchor: "Kubernetes SLO: mutating calls p99 ≤ 1 s"},
			{bench: "HollowScale", unit: "watch-p99-ms", what: "that update delivered to a watch, p99 of 200"},
			{bench: "HollowScale", unit: "list-slowest-ms", what: "unpaginated list of every pod of the cluster, request to the last byte of the answer (the SLI's span), slowest of 3", goal: "p99 ≤ 30 s", anchor: "Kubernetes SLO: cluster-wide lists p99 ≤ 30 s"},
			{bench: "HollowScale", unit: "list-decoded-slowest-ms", what: "the same list read and decoded by client-go (the client's own time included), slowest of 3"},
		},
	},
	{
		name: "up-memory", title: "keelson up at rest", pkg: "./cmd/keelson/",
		bench: "UpIdleMemory", args: []string{"-test.benchtime", "1x"}, root: true,
		figures: []figure{
			{bench: "UpIdleMemory", unit: "MB-rss", what: "resident memory of keelson up running examples/hello, a minute after its pods are Ready", goal: "≤ 150 MB",
				anchor: "k3s documents ~1.4–1.6 GB for its server with a small workload"},
		},
	},
	{
		name: "ui", title: "Web view in chromium", pkg: "./ui/",
		bench: "FirstPaint|LiveUpdate", args: []string{"-test.benchtime", "10x"}, root: true,
		figures: []figure{
			{bench: "FirstPaint/source-1000-pods", unit: "ms-first-paint", what: "a source of 1,000 pods: first contentful paint from the navigation's start", goal: "≤ 300 ms on localhost with 1,000 pods"},
			{bench: "FirstPaint/source-1000-pods", unit: "ms-served", what: "the same: the server's part (responseEnd)"},
			{bench: "FirstPaint/sources", unit: "ms-first-paint", what: "the sources page"},
			{bench: "FirstPaint/pod", unit: "ms-first-paint", what: "a pod's page"},
			{bench: "FirstPaint/nodes", unit: "ms-first-paint", what: "the nodes page, counting 1,000 pods"},
			{bench: "FirstPaint/search-1000-pods", unit: "ms-first-paint", what: "a search for a word 1,000 pods share (100 shown)"},
			{bench: "LiveUpdate/pods-10", unit: "sec/op", what: "a Sync's new revision in etcd until the open source page shows it, 10 pods", goal: "within 1 s of the sync applying it"},
			{bench: "LiveUpdate/pods-1000", unit: "sec/op", what: "the same, 1,000 pods", goal: "within 1 s"},
		},
	},
}
