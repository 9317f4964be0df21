#!/usr/bin/env bash
# Regenerates schema/cue/cue.mod/gen from the Kubernetes Go types (run by `make schema`).
# It runs in this separate module because cue get go v0.17 mis-reads the embedded-field
# tags of k8s.io/api v0.37 (json:"" instead of json:",inline", kubernetes#138260);
# v0.36 has the same API fields for the kinds keelson supports and generates cleanly.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# SCHEMA_GEN_OUT lets a test generate elsewhere and compare with what is committed.
out="${SCHEMA_GEN_OUT:-$here/../../schema/cue/cue.mod/gen}"
pkgs=(
	k8s.io/api/core/v1
	k8s.io/api/apps/v1
	k8s.io/api/batch/v1
	k8s.io/api/autoscaling/v2
	k8s.io/api/networking/v1
	k8s.io/api/storage/v1
	k8s.io/api/rbac/v1
	k8s.io/api/policy/v1
	k8s.io/api/scheduling/v1
	k8s.io/api/node/v1
	k8s.io/api/admissionregistration/v1
	k8s.io/api/coordination/v1
	k8s.io/api/flowcontrol/v1
)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/cue.mod" "$work/"
cd "$work"
rm -rf cue.mod/gen
go run cuelang.org/go/cmd/cue get go "${pkgs[@]}"
# Go []byte fields are base64 strings in YAML and JSON, which is what manifests
# hold; cue get go types them as CUE bytes, which no manifest can satisfy.
find cue.mod/gen -name '*.cue' -exec sed -i -E '/@go\(/ s/(: |\]: )bytes([} ])/\1string\2/' {} +
rm -rf "$out"
cp -r cue.mod/gen "$out"
