package reconciler

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/store"
)

// The controllers' tests check the health their objects reach by these
// short names for internal/health's; the package itself uses health's.
// Health is a type of its own, not an alias: vet takes unkeyed literals
// only of the package's own struct types.
type (
	HealthStatus = health.Status
	Health       health.Health
)

const (
	Healthy     = health.Healthy
	Suspended   = health.Suspended
	Unsupported = health.Unsupported
	Progressing = health.Progressing
	Missing     = health.Missing
	Degraded    = health.Degraded
)

// HealthOf is health.Of.
func HealthOf(obj store.Object) Health { return Health(health.Of(obj)) }

// ruleHealth is the health of obj by its kind's rule, also for a kind on
// support's list: no kind on it has an empty name, so OfKind goes straight
// to the rule.
func ruleHealth(obj store.Object) Health { return Health(health.OfKind(schema.GroupKind{}, obj)) }
