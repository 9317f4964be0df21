package agent

import (
	"strings"
	"testing"
)

func TestParseEviction(t *testing.T) {
	def, err := ParseEviction("")
	if err != nil {
		t.Fatal(err)
	}
	if def.MemoryAvailable.String() != "100Mi" || def.NodeFSAvailable.String() != "10%" || def.PIDAvailable.String() != "5%" {
		t.Errorf("defaults %s %s %s", def.MemoryAvailable, def.NodeFSAvailable, def.PIDAvailable)
	}
	e, err := ParseEviction("memory.available<1Gi, pid.available<1000")
	if err != nil {
		t.Fatal(err)
	}
	if e.MemoryAvailable.Amount(0) != 1<<30 || e.PIDAvailable.Amount(1<<22) != 1000 || e.NodeFSAvailable.Amount(1000) != 100 {
		t.Errorf("parsed %s %s %s", e.MemoryAvailable, e.PIDAvailable, e.NodeFSAvailable)
	}
	if !e.NodeFSAvailable.Below(99, 1000) || e.NodeFSAvailable.Below(100, 1000) {
		t.Error("10% of 1000: 99 is below, 100 is not")
	}
	for in, want := range map[string]string{
		"memory.available":       "want signal<quantity",
		"imagefs.available<10%":  `unknown signal "imagefs.available"`,
		"memory.available<lots":  `"lots": want a quantity`,
		"nodefs.available<120%":  "want a percentage from 0% to 100%",
		"memory.available<-1Mi":  `"-1Mi": want a quantity`,
		"pid.available<5%,bogus": `"bogus": want signal<quantity`,
	} {
		if _, err := ParseEviction(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEviction(%q) = %v, want an error with %q", in, err, want)
		}
	}
}
