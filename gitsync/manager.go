package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/keelson/keelson/gitsync/notification"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// ErrUnknownSync marks a sync name that Syncs does not run.
var ErrUnknownSync = errors.New("gitsync: no such sync")

// Syncs runs the loops of several sources into one store, one Loop each,
// finds them by name for webhooks and manual triggers, and swaps in a new
// list of sources while running (Reload).
type Syncs struct {
	// OnStatus, when set, becomes the OnStatus of every loop as it starts.
	// Set it before Run.
	OnStatus func(Status)
	// Notify, when set, is told of every attempt of every loop (with
	// Notifications' link). Set it before Run.
	Notify        func(notification.Event)
	Notifications Notifications

	st    *store.Store
	sch   *schema.Schema
	cache *schema.Cache
	log   *slog.Logger

	reloading sync.Mutex // one Reload at a time
	mu        sync.Mutex // guards what follows
	names     []string
	byName    map[string]*managed
	running   context.Context // Run's, while it runs
	wg        sync.WaitGroup  // the running loops
}

type managed struct {
	cfg  Config
	loop *Loop
	stop context.CancelFunc // nil until started
	done chan struct{}
}

// NewSyncs builds the loop of every source with New, sharing cache (may be
// nil). Names must differ: objects are owned by name. Errors: ErrConfig.
func NewSyncs(cfgs []Config, st *store.Store, sch *schema.Schema, cache *schema.Cache, log *slog.Logger) (*Syncs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Syncs{st: st, sch: sch, cache: cache, log: log}
	names, byName, err := s.build(cfgs, nil)
	if err != nil {
		return nil, err
	}
	s.names, s.byName = names, byName
	return s, nil
}

// build makes the loops of cfgs, reusing those of old whose Config is the same.
func (s *Syncs) build(cfgs []Config, old map[string]*managed) ([]string, map[string]*managed, error) {
	cfgs = slices.Clone(cfgs)
	for i := range cfgs {
		if cfgs[i].Name == "" {
			cfgs[i].Name = "default"
		}
	}
	if err := checkDependencies(cfgs); err != nil {
		return nil, nil, err
	}
	var names []string
	byName := map[string]*managed{}
	for _, cfg := range cfgs {
		if _, dup := byName[cfg.Name]; dup {
			return nil, nil, fmt.Errorf("%w: two sources are named %q: objects are owned by name, so names must differ", ErrConfig, cfg.Name)
		}
		m, same := old[cfg.Name]
		if !same || !sameConfig(m.cfg, cfg) {
			loop, err := New(cfg, s.st, s.sch, s.cache, s.log)
			if err != nil {
				return nil, nil, err
			}
			m = &managed{cfg: cfg, loop: loop}
		}
		names = append(names, cfg.Name)
		byName[cfg.Name] = m
	}
	return names, byName, nil
}

// Names returns the names of the syncs, in the order they were given.
func (s *Syncs) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

func (s *Syncs) get(name string) (*managed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byName[name]
	return m, ok
}

// Loop returns the loop of the named sync.
func (s *Syncs) Loop(name string) (*Loop, bool) {
	m, ok := s.get(name)
	if !ok {
		return nil, false
	}
	return m.loop, true
}

// Config returns the configuration the named sync was built from.
func (s *Syncs) Config(name string) (Config, bool) {
	m, ok := s.get(name)
	if !ok {
		return Config{}, false
	}
	return m.cfg, true
}

// Statuses returns the status of every sync, in Names' order.
func (s *Syncs) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.names))
	for _, name := range s.names {
		out = append(out, s.byName[name].loop.Status())
	}
	return out
}

// Run runs every loop until ctx is done and returns ctx.Err(). It also serves
// the requests made with Trigger in other processes. With several servers,
// only the leader calls Run (with a context of store.Lead, which fences the
// loops' writes); Run may be called again after it returned, for a new term.
func (s *Syncs) Run(ctx context.Context) error {
	s.mu.Lock()
	s.running = ctx
	for _, name := range s.names {
		s.start(s.byName[name])
	}
	s.mu.Unlock()
	s.wg.Go(func() { s.followRequests(ctx) })
	<-ctx.Done()
	s.mu.Lock()
	s.running = nil
	s.mu.Unlock()
	s.wg.Wait()
	return ctx.Err()
}

// start runs m's loop under Run's context; s.mu is held.
func (s *Syncs) start(m *managed) {
	if m.cfg.Suspend {
		s.log.Info("sync suspended: nothing is polled or applied until suspend is removed", "component", "gitsync", "sync", m.cfg.Name)
	}
	onStatus, notify, cfg := s.OnStatus, s.Notify, m.cfg
	if notify != nil {
		links := s.Notifications
		m.loop.OnStart = func(_ string, rev Revision) {
			notify(startEvent(cfg, rev, links.linkOf(cfg.Name, rev.ID)))
		}
		var lastRev, lastReason string // of the last event sent: a resync, or a retry failing alike, says nothing new
		m.loop.OnStatus = func(st Status) {
			if onStatus != nil {
				onStatus(st)
			}
			if st.LastAttempted.ID == lastRev && st.Reason == lastReason {
				return
			}
			lastRev, lastReason = st.LastAttempted.ID, st.Reason
			notify(endEvent(cfg, st, links.linkOf(cfg.Name, st.LastAttempted.ID)))
		}
	} else if onStatus != nil {
		m.loop.OnStatus = onStatus
	}
	ctx, stop := context.WithCancel(s.running)
	m.stop, m.done = stop, make(chan struct{})
	s.wg.Go(func() {
		defer close(m.done)
		_ = m.loop.Run(ctx)
	})
}

// Reload replaces the list of sources: syncs whose Config is unchanged keep
// running undisturbed, changed ones are stopped and started anew (a sync no
// longer suspended polls at once), removed ones are stopped. Objects of a
// removed sync stay in the store, labelled with its name. If any new Config
// is refused, nothing changes. Errors: ErrConfig.
func (s *Syncs) Reload(cfgs []Config) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	s.mu.Lock()
	old := s.byName
	s.mu.Unlock()
	names, byName, err := s.build(cfgs, old)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var stopped []*managed
	for name, m := range s.byName {
		if byName[name] != m && m.stop != nil {
			m.stop()
			stopped = append(stopped, m)
		}
	}
	s.mu.Unlock()
	// The old loop of a changed sync ends before the new one starts, so the
	// two never apply at once.
	for _, m := range stopped {
		<-m.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names, s.byName = names, byName
	if s.running != nil {
		for _, name := range names {
			if m := byName[name]; m.stop == nil {
				s.start(m)
			}
		}
	}
	return nil
}
