package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestParseTputLog checks how BenchmarkServiceThroughput reads its client's
// log: a transfer that lost bytes, took no time or lacks its pair fails the
// run instead of becoming a figure.
func TestParseTputLog(t *testing.T) {
	full := fmt.Sprintf("%d+0", tpBlocks)
	line := func(path, blocks string, us int) string { return fmt.Sprintf("%s %s %d\n", path, blocks, us) }
	// 1 GiB in 1,073,741.824 µs is 1,000 MB/s exactly.
	const us1000 = tpBytes / 1000
	good := line("warmup-podip", full, 1) +
		line("podip", full, us1000) + line("clusterip", full, 2*us1000) +
		line("clusterip", full, us1000) + line("podip", full, us1000) + "end\n"
	for _, tc := range []struct {
		name, log string
		pairs     int
		err       string
	}{
		{"two pairs", good, 2, ""},
		{"a pair missing", good, 3, "2 complete pairs of transfers, want 3"},
		{"a short transfer", strings.Replace(good, "clusterip "+full+" "+fmt.Sprint(2*us1000), "clusterip 512+1 9", 1), 2,
			`clusterip: read "512+1" blocks of 1 MiB, want 1024`},
		{"no connection", good + "podip  0\n", 2, `unexpected line "podip  0"`},
		{"no time", strings.Replace(good, fmt.Sprint(2*us1000), "0", 1), 2, `clusterip: duration "0" µs`},
		{"the script's own complaint", "the cluster IP never answered\n", 1, `unexpected line "the cluster IP never answered"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod, cluster, ratio, err := parseTputLog(tc.log, tc.pairs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			near := func(got []float64, want ...float64) bool {
				if len(got) != len(want) {
					return false
				}
				for i := range got {
					if math.Abs(got[i]-want[i]) > 0.01 {
						return false
					}
				}
				return true
			}
			if !near(pod, 1000, 1000) || !near(cluster, 500, 1000) || !near(ratio, 0.5, 1) {
				t.Errorf("pod %v, cluster %v, ratio %v; want [1000 1000] [500 1000] [0.5 1]", pod, cluster, ratio)
			}
		})
	}
}
