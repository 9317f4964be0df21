package reconciler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/record"
)

// manager runs the informers and every controller of one leader term.
type manager struct {
	st   *store.Store
	log  *slog.Logger
	opts Options
	inf  *Informers
	rec  *Recorder
	runs []func(ctx context.Context)
}

func newManager(st *store.Store, log *slog.Logger, opts Options) *manager {
	opts = opts.withDefaults()
	m := &manager{st: st, log: log, opts: opts, inf: NewInformers(st, opts.Resync, log)}
	m.rec = NewRecorder(st, "controller-manager", log)
	rs := NewReplicaSetController(st, m.inf, m.rec, opts.Queue, log)
	rc := NewReplicationControllerController(st, m.inf, m.rec, opts.Queue, log)
	d := NewDeploymentController(st, m.inf, m.rec, opts.Queue, log)
	job := NewJobController(st, m.inf, m.rec, opts.Job, opts.Queue, log)
	cron := NewCronJobController(st, m.inf, m.rec, opts.CronJob, opts.Queue, log)
	daemons := NewDaemonSetController(st, m.inf, m.rec, opts.Queue, log)
	sets := NewStatefulSetController(st, m.inf, m.rec, opts.Queue, log)
	volumes := NewPVBinder(st, m.inf, m.rec, opts.Queue, log)
	protection := NewPVCProtection(st, m.inf, opts.Queue, log)
	ephemeral := NewEphemeralController(st, m.inf, m.rec, opts.Queue, log)
	gc := NewGarbageCollector(st, m.inf, opts.Queue, log)
	ns := NewNamespaceController(st, m.inf, opts.Queue, log)
	hpa := NewHPAController(st, m.inf, m.rec, opts.HPA, opts.Queue, log)
	quotas := NewQuotaController(st, m.inf, opts.Queue, log)
	budgets := NewDisruptionController(st, m.inf, opts.Queue, log)
	accounts := NewServiceAccountController(st, m.inf, opts.ServiceAccounts, opts.Queue, log)
	ingresses := NewIngressStatusController(st, m.inf, opts.Queue, log)
	if !opts.Scheduler.Disabled {
		// The scheduler's events name it as their source, as kube-scheduler's
		// do, and have their own backlog: a burst of bindings must not crowd
		// out the controllers' events.
		srec := NewRecorder(st, "default-scheduler", log)
		m.runs = append(m.runs, NewScheduler(st, m.inf, srec, opts.Scheduler, opts.Queue, log).Run, srec.Run)
	}
	if !opts.NodeLifecycle.Disabled {
		m.runs = append(m.runs, NewNodeLifecycleController(st, m.inf, m.rec, opts.NodeLifecycle, opts.Queue, log).Run)
	}
	health := NewSyncHealthController(st, m.inf, opts.Queue, log)
	np := NewNodePolicyController(st, m.inf, m.rec, opts.Queue, log)
	ips := newServiceIPController(st, m.inf, m.rec, opts.services, opts.Queue, log)
	ips.reconciled = opts.serviceIPReconciled
	cps := newControlPlaneServicesController(st, m.inf, opts.services, opts.Queue, log)
	m.runs = append(m.runs, ips.Run, cps.Run)
	m.runs = append(m.runs, endpointControllers(st, m.inf, opts.Endpoints, opts.Queue, log)...)
	m.runs = append(m.runs, cloudControllers(st, m.inf, m.rec, opts, log)...)
	m.runs = append(m.runs, rs.Run, rc.Run, d.Run, job.Run, cron.Run, daemons.Run, sets.Run, volumes.Run, protection.Run, ephemeral.Run, gc.Run, ns.Run, hpa.Run, quotas.Run, budgets.Run, accounts.Run, ingresses.Run, health.Run, np.Run, m.rec.Run, func(ctx context.Context) {
		record.ExpireEvents(ctx, st, opts.EventTTL, opts.EventTTL/6, log)
	})
	return m
}

// run starts the informers, waits for their first list, then runs the
// controllers until ctx ends.
func (m *manager) run(ctx context.Context) {
	m.inf.Start(ctx)
	// When the term ends before the caches are filled, the controllers
	// still run, at once ending: their queues shut down, and what the
	// queues count on /metrics goes back to zero for the next term.
	_ = m.inf.WaitForSync(ctx)
	var wg sync.WaitGroup
	for _, run := range m.runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	wg.Wait()
}

// Options tune the controllers; zero values take defaults.
type Options struct {
	// Queue tunes every controller's work queue.
	Queue QueueOptions
	// LeaderElection tunes the election among control-plane processes.
	LeaderElection LeaderElection
	// EventTTL is how long Events are kept after they last happened. Default
	// one hour.
	EventTTL time.Duration
	// OnLeading, when set, is called with true when this process starts
	// running the controllers and with false when they have stopped.
	OnLeading func(leading bool)
	// Scheduler tunes the scheduler.
	Scheduler SchedulerOptions
	// NodeLifecycle tunes node health, eviction and pod CIDRs.
	NodeLifecycle NodeLifecycleOptions
	// Endpoints tunes the EndpointSlice, Endpoints and mirroring controllers.
	Endpoints EndpointsOptions
	// Resync makes every informer hand every cached object to the
	// controllers again this often, a safety net for missed events. Default
	// 10 minutes; negative disables.
	Resync time.Duration
	// Services tunes cluster IPs, node ports and the control plane's own
	// services.
	Services ServiceOptions
	// Job tunes the Job controller.
	Job JobOptions
	// CronJob tunes the CronJob controller.
	CronJob CronJobOptions
	// HPA tunes the HorizontalPodAutoscaler controller and gives it the
	// pods' usage.
	HPA HPAOptions
	// ServiceAccounts gives the root CA every namespace publishes.
	ServiceAccounts ServiceAccountOptions
	// Cloud is the cloud provider of the service load balancer, cloud node
	// and route controllers, built by the caller (tests, programs that
	// embed keelson), used for every leader term. When nil, CloudProvider
	// names one, built afresh for each term.
	Cloud cloud.Interface
	// CloudProvider names a registered provider (cloud.Register; "local"
	// once package reconciler/cloud/local is imported): keelson server's
	// --cloud-provider. "" is "none": LoadBalancer services are told that
	// nothing gives them an address.
	CloudProvider string
	// CloudConfig configures CloudProvider (LBPool is --lb-pool). Services
	// defaults to the term's Service cache, Logger to the controllers'.
	CloudConfig cloud.Config
	// CloudResync is how often the cloud node and route controllers ask the
	// provider again. Default 10s.
	CloudResync time.Duration

	// services is Services checked by Run, before any controller starts.
	services serviceConfig
	// serviceIPReconciled, for tests, is told each key the service IP
	// controller's queues finished with.
	serviceIPReconciled func(queue, key string)
}

func (o Options) withDefaults() Options {
	if o.Resync == 0 {
		o.Resync = 10 * time.Minute
	}
	if o.EventTTL <= 0 {
		o.EventTTL = time.Hour
	}
	if o.Resync < 0 {
		o.Resync = 0
	}
	return o
}
