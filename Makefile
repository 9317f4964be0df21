# keelson's build and test entry points. `make test` is the one test command:
# it installs what the tests need on a fresh Debian machine, then runs them.

GO       ?= go
PKGS     ?= ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/keelson/keelson/internal/version.Version=$(VERSION) \
            -X github.com/keelson/keelson/internal/version.Commit=$(COMMIT)

# Debian packages the tests run for real: etcd (external-etcd tests), containerd
# and runc (agent), CNI plugins (pod networking), busybox (the test image), git
# (remote Git sources: upload-pack for file:// and ssh, http-backend for HTTP),
# qemu (software emulation) for internal/vmtest's VMs, which test cgroup v1 and
# v2 whatever the machine runs; kmod and xz-utils serve hack/vm-kernel.sh;
# chromium, headless, for the web view's browser tests (ui/uitest).
DEB_PKGS := containerd runc containernetworking-plugins etcd-server busybox-static iptables iproute2 git qemu-system-x86 kmod xz-utils chromium
DEB_BINS := /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge /usr/bin/etcd /bin/busybox /usr/sbin/iptables /usr/sbin/ip \
            /usr/bin/git /usr/lib/git-core/git-http-backend /usr/bin/qemu-system-x86_64 /usr/sbin/depmod /usr/bin/xz /usr/bin/chromium
# Installed without their recommendations (qemu's would add a desktop's libraries).
DEB_NORECOMMENDS := qemu-system-x86 kmod xz-utils

.PHONY: all build test deps vet unit bench demo demo-deps images clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/keelson ./cmd/keelson
	$(GO) build -o bin/keelson-logger ./cmd/keelson-logger

deps:
	@missing=""; for b in $(DEB_BINS); do [ -e $$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make test needs$$missing: run it as root, or install: apt-get install -y $(DEB_PKGS)" >&2; exit 1; \
	  fi; \
	  echo "installing $(DEB_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(filter-out $(DEB_NORECOMMENDS),$(DEB_PKGS)) >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_NORECOMMENDS) >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ]; then hack/vm-kernel.sh; \
	else hack/vm-kernel.sh || echo "no kernel for internal/vmtest's VMs (their tests skip): run make deps as root" >&2; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

test: deps vet unit

# bench runs every benchmark of the suite (bench/report/suite.go) ROUNDS times
# and rewrites the generated section of BENCHMARKS.md with min/median/max;
# BENCH=store,gitsync picks sections. bench/store.sh gives the store's ratios
# to raw etcd round by round.
ROUNDS ?= 3
BENCH  ?=
bench:
	$(GO) run ./bench/report -rounds $(ROUNDS) -only "$(BENCH)"

# The busybox image tests and examples run (localhost/busybox:latest), built from
# Debian's busybox-static; import it with `keelson image import bin/images/busybox.tar`.
images: deps
	$(GO) run ./hack/busybox-image -o bin/images/busybox.tar

# demo runs the runnable examples (examples/, less what examples/.keelsonignore
# lists) with keelson up on this machine: it installs what is missing (as root),
# builds keelson and the busybox image, and runs keelson up, which imports the
# image and starts a containerd of its own when none runs. Ctrl-C stops it;
# `make demo` again resumes. DEMO_FLAGS adds keelson up flags (--data-dir …).
DEMO_PKGS := containerd runc containernetworking-plugins busybox-static iptables iproute2 git
DEMO_BINS := /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge /bin/busybox /usr/sbin/iptables /usr/sbin/ip /usr/bin/git
DEMO_FLAGS ?=

demo-deps:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make demo runs containers (namespaces, cgroups, a bridge), which needs root: run sudo make demo" >&2; exit 1; \
	fi
	@missing=""; for b in $(DEMO_BINS); do [ -e $$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(DEMO_PKGS) (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEMO_PKGS) >/dev/null; \
	fi

demo: demo-deps build
	$(GO) run ./hack/busybox-image -o bin/images/busybox.tar
	bin/keelson up --repo $(CURDIR) --path examples --import-image bin/images/busybox.tar $(DEMO_FLAGS)

clean:
	rm -rf bin

.PHONY: schema schema-check

# schema regenerates the CUE type definitions in schema/cue/cue.mod/gen from the
# Kubernetes Go types (see hack/schemagen/gen.sh for why in a separate module).
schema:
	hack/schemagen/gen.sh

# schema-check fails when the committed generated definitions are out of date.
schema-check: schema
	@git diff --exit-code --stat -- schema/cue/cue.mod/gen && \
	test -z "$$(git status --porcelain -- schema/cue/cue.mod/gen)" || \
	{ echo "schema/cue/cue.mod/gen is out of date: run make schema and commit" >&2; exit 1; }

.PHONY: generate

# generate rewrites the DeepCopy functions of keelson's own API types
# (api/v1alpha1) with Kubernetes' deepcopy-gen.
generate:
	$(GO) generate ./api/...
