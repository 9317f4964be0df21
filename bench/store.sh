#!/usr/bin/env bash
# Runs the store benchmarks (keelson's store and the raw etcd client side by side
# on the same embedded etcd) COUNT times (default 6). Each round runs every
# variant once, back to back, so a change of load on the machine hits both
# sides alike; then benchstat prints the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/store.txt
go test -c -o bench/results/store.test ./store/
: > "$out"
for i in $(seq "${COUNT:-6}"); do
  (cd store && ../bench/results/store.test -test.run '^$' -test.bench . -test.benchmem -test.timeout 30m) 2>/dev/null \
    | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >> "$out"
done
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out"
awk -f bench/ratios.awk "$out" | sort
