package ingress

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/servicenet"
)

// refSet holds the Services and Secrets the served Ingresses name, as
// refKey makes their keys: events of other objects change nothing.
type refSet map[string]bool

func refKey(kind byte, namespace, name string) string {
	return string(kind) + "/" + namespace + "/" + name
}

const (
	refService = 's'
	refSecret  = 'x'
)

// registration is an event handler of one informer, removed when Run ends.
type registration struct {
	inf cache.SharedIndexInformer
	reg cache.ResourceEventHandlerRegistration
}

// watch registers the event handlers, which only wake the rebuild loop.
func (p *Proxy) watch() ([]registration, error) {
	var regs []registration
	add := func(inf cache.SharedIndexInformer, relevant func(obj any) bool) error {
		r, err := inf.AddEventHandler(p.handler(relevant))
		if err != nil {
			return fmt.Errorf("ingress: watch: %w", err)
		}
		regs = append(regs, registration{inf: inf, reg: r})
		return nil
	}
	always := func(any) bool { return true }
	err := errors.Join(
		add(p.cfg.Ingresses, always),
		add(p.cfg.IngressClasses, always),
		add(p.cfg.Services, func(obj any) bool {
			s, ok := obj.(*corev1.Service)
			return ok && p.referenced(refKey(refService, s.Namespace, s.Name))
		}),
		add(p.cfg.EndpointSlices, func(obj any) bool {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			return ok && p.referenced(refKey(refService, s.Namespace, s.Labels[servicenet.LabelServiceName]))
		}),
		add(p.cfg.Secrets, func(obj any) bool {
			s, ok := obj.(*corev1.Secret)
			return ok && p.referenced(refKey(refSecret, s.Namespace, s.Name))
		}))
	return regs, err
}

func (p *Proxy) unwatch(regs []registration) {
	for _, r := range regs {
		_ = r.inf.RemoveEventHandler(r.reg)
	}
}

// handler pokes the rebuild loop for the events relevant says matter. An
// update that leaves the resourceVersion alone (an informer's resync)
// changes nothing.
func (p *Proxy) handler(relevant func(obj any) bool) cache.ResourceEventHandlerFuncs {
	on := func(obj any) {
		if relevant(unwrap(obj)) {
			p.poke()
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    on,
		DeleteFunc: on,
		UpdateFunc: func(old, obj any) {
			if sameVersion(old, obj) {
				return
			}
			if relevant(old) || relevant(obj) {
				p.poke()
			}
		},
	}
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func sameVersion(a, b any) bool {
	ma, err1 := meta.Accessor(a)
	mb, err2 := meta.Accessor(b)
	return err1 == nil && err2 == nil && ma.GetResourceVersion() != "" && ma.GetResourceVersion() == mb.GetResourceVersion()
}

// referenced reports whether a served Ingress names the object; before the
// first build everything is.
func (p *Proxy) referenced(key string) bool {
	refs := p.refs.Load()
	return refs == nil || (*refs)[key]
}

func (p *Proxy) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// waitSynced waits until every handler has seen its informer's first list;
// false when ctx ended first.
func waitSynced(ctx context.Context, regs []registration) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		synced := true
		for _, r := range regs {
			synced = synced && r.reg.HasSynced()
		}
		if synced {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// loop rebuilds the table after changes, at most once per rebuildEvery.
func (p *Proxy) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		p.rebuild()
		select {
		case <-ctx.Done():
			return
		case <-time.After(rebuildEvery):
		}
	}
}

// rebuild builds a new table from the informers' stores and swaps it in.
// A panic on a malformed object keeps the table that was.
func (p *Proxy) rebuild() {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("building the routing table failed; serving the previous one", "panic", r)
		}
	}()
	ings := p.ingresses()
	// The references are published before the Services, slices and Secrets
	// are read: an event on one of them either is in the stores read below
	// or comes after and pokes the next build.
	refs := references(ings, ingressclass.FromStore(p.cfg.IngressClasses.GetStore()))
	p.refs.Store(&refs)
	t, problems := build(p.source(ings), p.fw, p.certs)
	p.table.Store(t)
	p.tell(problems)
	p.builds.Add(1)
	p.log.Debug("routing table built", "ingresses", len(ings), "hosts", len(t.hosts)+len(t.wildcards), "took", time.Since(start))
}

// ingresses lists the Ingresses, oldest first (then by namespace and name):
// the order that settles conflicts.
func (p *Proxy) ingresses() []*networkingv1.Ingress {
	var ings []*networkingv1.Ingress
	for _, o := range p.cfg.Ingresses.GetStore().List() {
		if ing, ok := o.(*networkingv1.Ingress); ok {
			ings = append(ings, ing)
		}
	}
	sortIngresses(ings)
	return ings
}

func sortIngresses(ings []*networkingv1.Ingress) {
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// source reads the informers' stores.
func (p *Proxy) source(ings []*networkingv1.Ingress) source {
	get := func(inf cache.SharedIndexInformer, ns, name string) any {
		o, ok, err := inf.GetStore().GetByKey(ns + "/" + name)
		if err != nil || !ok {
			return nil
		}
		return o
	}
	return source{
		ingresses: ings,
		class:     ingressclass.FromStore(p.cfg.IngressClasses.GetStore()),
		service: func(ns, name string) *corev1.Service {
			s, _ := get(p.cfg.Services, ns, name).(*corev1.Service)
			return s
		},
		secret: func(ns, name string) *corev1.Secret {
			s, _ := get(p.cfg.Secrets, ns, name).(*corev1.Secret)
			return s
		},
		slices: func(ns, svc string) []*discoveryv1.EndpointSlice {
			idx := p.cfg.EndpointSlices.GetIndexer()
			objs, err := idx.ByIndex(cache.NamespaceIndex, ns)
			if err != nil { // an informer without the namespace index
				objs = idx.List()
			}
			var out []*discoveryv1.EndpointSlice
			for _, o := range objs {
				if s, ok := o.(*discoveryv1.EndpointSlice); ok && s.Namespace == ns && s.Labels[servicenet.LabelServiceName] == svc {
					out = append(out, s)
				}
			}
			return out
		},
	}
}

// references lists what the served Ingresses name.
func references(ings []*networkingv1.Ingress, class ingressclass.Classes) refSet {
	refs := refSet{}
	add := func(ns string, b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			refs[refKey(refService, ns, b.Service.Name)] = true
		}
	}
	for _, ing := range ings {
		if !ingressclass.Served(ing, class) {
			continue
		}
		add(ing.Namespace, ing.Spec.DefaultBackend)
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for i := range r.HTTP.Paths {
				add(ing.Namespace, &r.HTTP.Paths[i].Backend)
			}
		}
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				refs[refKey(refSecret, ing.Namespace, t.SecretName)] = true
			}
		}
	}
	return refs
}

// tell records an Event and logs each problem that the previous build did
// not have: a problem is told once, however many builds and requests meet
// it, and again only after it went away and came back.
func (p *Proxy) tell(problems []problem) {
	now := make(map[string]bool, len(problems))
	for _, pr := range problems {
		key := string(pr.ing.UID) + "\x00" + pr.ing.Namespace + "/" + pr.ing.Name + "\x00" + pr.reason + "\x00" + pr.message
		if now[key] {
			continue
		}
		now[key] = true
		if p.told[key] {
			continue
		}
		p.log.Warn("ingress problem", "ingress", pr.ing.Namespace+"/"+pr.ing.Name, "reason", pr.reason, "problem", pr.message)
		if p.cfg.Event != nil {
			p.cfg.Event(pr.ing, corev1.EventTypeWarning, pr.reason, pr.message)
		}
	}
	p.told = now
}
