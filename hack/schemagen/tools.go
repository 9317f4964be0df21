//go:build tools

// Package schemagen pins the inputs of `make schema`: the Kubernetes API types
// the CUE definitions are generated from, and the cue command that generates
// them. It is its own module so that its k8s.io/api version (v0.36.x, whose
// embedded-field tags cue get go understands) does not affect keelson's build.
package schemagen

import (
	_ "cuelang.org/go/cmd/cue"
	_ "k8s.io/api/core/v1"
)
