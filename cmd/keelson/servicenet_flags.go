package main

import (
	"github.com/keelson/keelson/internal/servicenet"
)

// cidrFlag is a --service-cidr: parsed when the flag is, so that a bad value
// stops the command before anything starts.
type cidrFlag struct{ v *servicenet.CIDR }

func (f cidrFlag) String() string {
	if f.v == nil || f.v.IsZero() {
		return ""
	}
	return f.v.String()
}

func (f cidrFlag) Set(s string) error {
	c, err := servicenet.ParseCIDR(s)
	if err != nil {
		return err
	}
	*f.v = c
	return nil
}

func (cidrFlag) Type() string { return "cidr" }

// portRangeFlag is a --service-node-port-range, parsed as cidrFlag is.
type portRangeFlag struct{ v *servicenet.PortRange }

func (f portRangeFlag) String() string {
	if f.v == nil || *f.v == (servicenet.PortRange{}) {
		return ""
	}
	return f.v.String()
}

func (f portRangeFlag) Set(s string) error {
	r, err := servicenet.ParsePortRange(s)
	if err != nil {
		return err
	}
	*f.v = r
	return nil
}

func (portRangeFlag) Type() string { return "range" }
