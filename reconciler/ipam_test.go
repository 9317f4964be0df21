package reconciler

import "testing"

func TestCIDRAllocator(t *testing.T) {
	a, err := newCIDRAllocator("10.42.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	a.occupy("agent-set", "10.42.1.0/24")
	a.occupy("foreign", "192.168.0.0/24") // outside the cluster CIDR: ignored
	if other := a.occupy("copycat", "10.42.1.0/24"); other != "agent-set" {
		t.Errorf("a second node claiming 10.42.1.0/24: conflict with %q, want agent-set", other)
	}
	steps := []struct {
		node, want string
	}{
		{"a", "10.42.0.0/24"},
		{"b", "10.42.2.0/24"}, // 10.42.1.0/24 is taken by the agent
		{"a", "10.42.0.0/24"}, // asked again: the same
	}
	for _, s := range steps {
		got, err := a.allocate(s.node)
		if err != nil || got != s.want {
			t.Fatalf("allocate(%s) = %s, %v; want %s", s.node, got, err, s.want)
		}
	}
	a.release("a")
	a.next = 0
	if got, _ := a.allocate("c"); got != "10.42.0.0/24" {
		t.Errorf("after release, allocate(c) = %s, want the freed 10.42.0.0/24", got)
	}
}

func TestCIDRAllocatorFull(t *testing.T) {
	a, err := newCIDRAllocator("10.42.0.0/23", 24)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := a.allocate(n); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := a.allocate("c"); err == nil {
		t.Fatalf("third /24 of a /23: got %s, want an error", got)
	}
	if _, err := newCIDRAllocator("10.42.0.0/16", 8); err == nil {
		t.Error("a /8 per node in a /16: want an error")
	}
	if _, err := newCIDRAllocator("fd00::/64", 80); err != nil {
		t.Errorf("IPv6: %v", err)
	}
}

// TestCIDRAllocatorRetryGetsTheSameSubnet: a subnet given back because its
// write lost a race is the one handed out next, so the first node of a
// cluster gets the first /24 however its first write went.
func TestCIDRAllocatorRetryGetsTheSameSubnet(t *testing.T) {
	a, err := newCIDRAllocator("10.42.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.allocate("n1")
	a.release("n1") // the Update of the node conflicted
	if again, _ := a.allocate("n1"); again != first || first != "10.42.0.0/24" {
		t.Errorf("retry got %s, first try %s; want 10.42.0.0/24 both times", again, first)
	}
}
