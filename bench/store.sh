#!/usr/bin/env bash
# Runs the store benchmarks (keelson's store and the raw etcd client side by side
# on the same embedded etcd) six times each and prints medians with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/store.txt
go test -run '^$' -bench . -benchmem -count "${COUNT:-6}" -timeout 60m ./store/ 2>/dev/null | grep -v '"level"' > "$out"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out"
