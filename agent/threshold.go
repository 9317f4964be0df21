package agent

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Threshold is a hard eviction threshold on an amount available: a
// quantity, or a percentage of the capacity.
type Threshold struct {
	// Quantity, when set, is the amount itself.
	Quantity *resource.Quantity
	// Percent of the capacity, when Quantity is nil.
	Percent float64
}

// Below reports whether avail is under the threshold for that capacity.
func (t Threshold) Below(avail, capacity int64) bool {
	return avail < t.Amount(capacity)
}

// Amount is the threshold in units of the signal for that capacity.
func (t Threshold) Amount(capacity int64) int64 {
	if t.Quantity != nil {
		return t.Quantity.Value()
	}
	return int64(float64(capacity) * t.Percent / 100)
}

func (t Threshold) String() string {
	if t.Quantity != nil {
		return t.Quantity.String()
	}
	return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
}

// Eviction holds the node's hard eviction thresholds, by signal, as the
// kubelet's --eviction-hard: below one, the node reports pressure and
// evicts pods.
type Eviction struct {
	MemoryAvailable Threshold // memory.available
	NodeFSAvailable Threshold // nodefs.available: the agent's data dir's file system
	PIDAvailable    Threshold // pid.available
}

// DefaultEvictionHard are the kubelet's defaults, and pid.available<5%:
// the kubelet sets none, and a node out of process IDs fails every pod.
const DefaultEvictionHard = "memory.available<100Mi,nodefs.available<10%,pid.available<5%"

// ParseEviction reads thresholds written as the kubelet's --eviction-hard:
// signal<quantity or signal<percent%, separated by commas. Signals not
// written keep the defaults.
func ParseEviction(s string) (Eviction, error) {
	var e Eviction
	for _, part := range strings.Split(DefaultEvictionHard+","+s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		signal, value, ok := strings.Cut(part, "<")
		if !ok {
			return Eviction{}, fmt.Errorf("eviction threshold %q: want signal<quantity, e.g. memory.available<100Mi", part)
		}
		var t *Threshold
		switch signal {
		case "memory.available":
			t = &e.MemoryAvailable
		case "nodefs.available":
			t = &e.NodeFSAvailable
		case "pid.available":
			t = &e.PIDAvailable
		default:
			return Eviction{}, fmt.Errorf("eviction threshold %q: unknown signal %q (known: memory.available, nodefs.available, pid.available)", part, signal)
		}
		th, err := parseThreshold(value)
		if err != nil {
			return Eviction{}, fmt.Errorf("eviction threshold %q: %w", part, err)
		}
		*t = th
	}
	return e, nil
}

func parseThreshold(v string) (Threshold, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return Threshold{}, fmt.Errorf("%q: want a percentage from 0%% to 100%%", v)
		}
		return Threshold{Percent: f}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		return Threshold{}, fmt.Errorf("%q: want a quantity such as 100Mi or a percentage such as 10%%", v)
	}
	return Threshold{Quantity: &q}, nil
}
