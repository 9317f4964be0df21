package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTrimsProcsAndKeepsUnits(t *testing.T) {
	out := `goos: linux
pkg: github.com/keelson/keelson/gitsync
BenchmarkCommitToStore/objects=1000-2         	      20	  25000000 ns/op
BenchmarkCommitToStore/objects=1000-2         	      20	  27000000 ns/op
BenchmarkSchedule/5000Nodes_10000Pods-2       	       1	7070000000 ns/op	       1416 pods/s	        96.0 MB-heap
BenchmarkPollUnchanged                        	    1000	    190000 ns/op
`
	got, err := parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if v := got[key{"CommitToStore/objects=1000", "sec/op"}]; len(v) != 2 || math.Abs(v[0]-0.025) > 1e-9 || math.Abs(v[1]-0.027) > 1e-9 {
		t.Errorf("CommitToStore: %v", v)
	}
	if v := got[key{"Schedule/5000Nodes_10000Pods", "MB-heap"}]; len(v) != 1 || v[0] != 96 {
		t.Errorf("MB-heap, as reported: %v (all: %v)", v, got)
	}
	if v := got[key{"Schedule/5000Nodes_10000Pods", "pods/s"}]; len(v) != 1 || v[0] != 1416 {
		t.Errorf("pods/s: %v (all: %v)", v, got)
	}
	if v := got[key{"PollUnchanged", "sec/op"}]; len(v) != 1 {
		t.Errorf("a benchmark without a GOMAXPROCS suffix: %v", got)
	}
}

func TestMedianAndFormat(t *testing.T) {
	if m := median([]float64{1, 2, 9}); m != 2 {
		t.Errorf("median of 3: %v", m)
	}
	if m := median([]float64{1, 2, 4, 9}); m != 3 {
		t.Errorf("median of 4: %v", m)
	}
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{{0.025, "sec/op", "25.0 ms"}, {1.5, "sec/op", "1.50 s"}, {0.00019, "sec/op", "190 µs"}, {1416, "pods/s", "1416 pods/s"}, {3.25, "p50-ms", "3.25 p50-ms"}} {
		if got := format(tc.v, tc.unit); got != tc.want {
			t.Errorf("format(%v, %s) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestRewriteKeepsWhatIsWrittenByHand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# Benchmarks\n\nIntro.\n\n## Store\n\nAnalysis.\n"), 0o644)
	if err := rewrite(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if strings.Count(s, begin) != 1 || strings.Contains(s, "first") || !strings.Contains(s, "second") ||
		!strings.Contains(s, "Intro.") || !strings.Contains(s, "## Store\n\nAnalysis.") || strings.Index(s, begin) > strings.Index(s, "## Store") {
		t.Errorf("rewritten file:\n%s", s)
	}
}

func TestSuiteNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range suite {
		if seen[s.name] || s.pkg == "" || s.bench == "" || len(s.figures) == 0 {
			t.Errorf("section %q: duplicate or incomplete", s.name)
		}
		seen[s.name] = true
	}
}
