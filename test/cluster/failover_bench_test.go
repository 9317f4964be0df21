package cluster_test

import (
	"slices"
	"testing"
	"time"

	"github.com/keelson/keelson/test/cluster"
)

// BenchmarkLeaderFailover kills the leading server of three, on a 3-member
// etcd cluster, Kills times with the default lease (10 s), and reports how
// long the others took to elect a new leader, whose controllers and syncs
// start at once: from the SIGKILL until another server's keelson_leader
// metric says 1. The killed server starts again between kills.
func BenchmarkLeaderFailover(b *testing.B) {
	const kills = 10
	cl := cluster.New(b, cluster.Config{Hosts: 3, Etcd: 3, Servers: 3, Binary: binary, LeaderLease: 10 * time.Second})
	var times []time.Duration
	for b.Loop() {
		times = times[:0]
		for range kills {
			var leader *cluster.Host
			cluster.Eventually(b, 60*time.Second, "a leader", func() (string, bool) {
				leader = cl.Leader(b)
				return "none", leader != nil
			})
			leader.Server.Kill(b)
			killed := time.Now()
			cluster.Eventually(b, 60*time.Second, "another leader", func() (string, bool) {
				next := cl.Leader(b)
				return "none", next != nil && next != leader
			})
			times = append(times, time.Since(killed))
			leader.Server.Start(b)
			cl.WaitServer(b, leader)
		}
	}
	slices.Sort(times)
	at := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))].Milliseconds()) }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
