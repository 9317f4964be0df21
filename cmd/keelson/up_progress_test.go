package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestProgressTerminalRedraws(t *testing.T) {
	var term bytes.Buffer
	p := newProgress(&term, slog.New(slog.DiscardHandler), "keelson up")
	p.set(stepEtcd, true, "etcd ready")
	first := term.String()
	if !strings.HasPrefix(first, "\r\x1b[2K") {
		t.Errorf("the first drawing moves the cursor: %q", first)
	}
	if !strings.Contains(first, "  ✓ etcd ready\n") || !strings.Contains(first, "  … containerd starting\n") {
		t.Errorf("first drawing:\n%s", first)
	}
	lines := strings.Count(first, "\n")

	term.Reset()
	p.set(stepEtcd, true, "etcd ready")
	if term.Len() != 0 {
		t.Errorf("an unchanged step drew again: %q", term.String())
	}

	p.set(stepPods, true, "pods %d/%d running", 2, 2)
	p.setProblem("sync failed: deploy/a.yaml:3:1: …")
	again := term.String()
	if !strings.HasPrefix(again, fmt.Sprintf("\x1b[%dA", lines)) {
		t.Errorf("a redraw does not start %d lines up: %q", lines, again)
	}
	if !strings.Contains(again, "  ✓ pods 2/2 running\n") || !strings.Contains(again, "  ! sync failed: deploy/a.yaml:3:1: …\n") {
		t.Errorf("redraw:\n%s", again)
	}
}

func TestProgressFitsTheTerminal(t *testing.T) {
	var term bytes.Buffer
	p := newProgress(&term, slog.New(slog.DiscardHandler), "keelson up")
	p.width = 20
	p.set(stepSync, false, "revision 0123456789ab not applied (ValidationFailed): deploy/web.yaml:3:1: …")
	for _, l := range strings.Split(strings.TrimSuffix(term.String(), "\n"), "\n") {
		if n := len([]rune(strings.TrimPrefix(l, "\r\x1b[2K"))); n >= 20 {
			t.Errorf("line of %d characters on a terminal of 20 wraps and breaks the redraw: %q", n, l)
		}
	}
}

func TestProgressLogsWithoutTerminal(t *testing.T) {
	var log bytes.Buffer
	p := newProgress(nil, slog.New(slog.NewTextHandler(&log, nil)), "")
	p.set(stepSync, true, "revision %s applied: %d objects", "abc123", 12)
	p.set(stepSync, true, "revision %s applied: %d objects", "abc123", 12)
	p.set(stepPods, false, "pods 5/6 running")
	got := log.String()
	if n := strings.Count(got, "\n"); n != 2 {
		t.Errorf("%d log lines, want one per change (2):\n%s", n, got)
	}
	if !strings.Contains(got, `msg="revision abc123 applied: 12 objects" component=up`) || strings.Contains(got, "\x1b") {
		t.Errorf("log:\n%s", got)
	}
}
