package render

import (
	"strings"
	"testing"
	"testing/fstest"
)

// The marker is found wherever it sits in a file, across the reads of the
// scan buffer too.
func TestHoldsHelmChart(t *testing.T) {
	big := strings.Repeat("x", 32<<10)
	cases := []struct {
		name, data string
		want       bool
	}{
		{"small", "kind: HelmChart\n", true},
		{"none", "kind: ConfigMap\n", false},
		{"after a buffer", big + "kind: HelmChart\n", true},
		{"straddling two reads", big[:32<<10-4] + "HelmChart", true},
		{"cut marker only", big + "HelmChar", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{"a.yaml": {Data: []byte(c.data)}}
			if got := holdsHelmChart(fsys, "a.yaml"); got != c.want {
				t.Errorf("holdsHelmChart = %v, want %v", got, c.want)
			}
		})
	}
}
