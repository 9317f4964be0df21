package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// ErrUnknownSync marks a sync name that Syncs does not run.
var ErrUnknownSync = errors.New("gitsync: no such sync")

// Syncs runs the loops of several sources into one store, one Loop each,
// and finds them by name for webhooks and manual triggers.
type Syncs struct {
	names  []string
	byName map[string]*managed
	log    *slog.Logger
}

type managed struct {
	cfg  Config
	loop *Loop
}

// NewSyncs builds the loop of every source with New, sharing cache (may be
// nil). Names must differ: objects are owned by name. Errors: ErrConfig.
func NewSyncs(cfgs []Config, st *store.Store, sch *schema.Schema, cache *schema.Cache, log *slog.Logger) (*Syncs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Syncs{byName: map[string]*managed{}, log: log.With("component", "gitsync")}
	for _, cfg := range cfgs {
		loop, err := New(cfg, st, sch, cache, log)
		if err != nil {
			return nil, err
		}
		name := loop.Syncer.Name
		if _, dup := s.byName[name]; dup {
			return nil, fmt.Errorf("%w: two sources are named %q: objects are owned by name, so names must differ", ErrConfig, name)
		}
		cfg.Name = name
		s.names = append(s.names, name)
		s.byName[name] = &managed{cfg: cfg, loop: loop}
	}
	return s, nil
}

// Names returns the names of the syncs, in the order they were given.
func (s *Syncs) Names() []string { return append([]string(nil), s.names...) }

// Loop returns the loop of the named sync.
func (s *Syncs) Loop(name string) (*Loop, bool) {
	m, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return m.loop, true
}

// Config returns the configuration the named sync was built from.
func (s *Syncs) Config(name string) (Config, bool) {
	m, ok := s.byName[name]
	if !ok {
		return Config{}, false
	}
	return m.cfg, true
}

// Trigger makes the named sync poll now. Errors: ErrUnknownSync.
func (s *Syncs) Trigger(name string) error {
	m, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSync, name)
	}
	m.loop.Trigger()
	return nil
}

// Statuses returns the status of every sync, in Names' order.
func (s *Syncs) Statuses() []Status {
	out := make([]Status, 0, len(s.names))
	for _, name := range s.names {
		out = append(out, s.byName[name].loop.Status())
	}
	return out
}

// Run runs every loop until ctx is done and returns ctx.Err(). Suspended
// syncs are logged once and then left alone.
func (s *Syncs) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range s.names {
		m := s.byName[name]
		if m.cfg.Suspend {
			s.log.Info("sync suspended: nothing is polled or applied until suspend is removed and the server restarted", "sync", name)
		}
		wg.Go(func() { _ = m.loop.Run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return ctx.Err()
}
