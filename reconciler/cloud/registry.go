package cloud

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownProvider is returned by New for a name no provider is
// registered under.
var ErrUnknownProvider = errors.New("cloud: unknown provider")

// NoneName is the provider registered by this package: one with nothing.
const NoneName = "none"

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{NoneName: func(Config) (Interface, error) { return none{}, nil }}
)

// Register makes a provider available under name. The program that runs
// the controllers registers the providers it offers, by hand, once, before
// it parses its flags (keelson registers local in cmd/keelson); a provider
// package never registers itself. It panics when name is empty, f is nil,
// or name is registered already.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || f == nil {
		panic("cloud: Register needs a name and a factory")
	}
	if _, dup := registry[name]; dup {
		panic("cloud: Register called twice for provider " + name)
	}
	registry[name] = f
}

// New builds the provider registered under name with cfg. Errors:
// ErrUnknownProvider (the message lists the registered names), or the
// factory's.
func New(name string, cfg Config) (Interface, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q: registered are %s", ErrUnknownProvider, name, strings.Join(Names(), ", "))
	}
	p, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud provider %s: %w", name, err)
	}
	return p, nil
}

// Names returns the registered providers' names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// none is the provider of machines that offer nothing.
type none struct{}

func (none) Name() string                       { return NoneName }
func (none) LoadBalancer() (LoadBalancer, bool) { return nil, false }
func (none) Instances() (Instances, bool)       { return nil, false }
func (none) Routes() (Routes, bool)             { return nil, false }
