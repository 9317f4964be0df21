// Package runtimetest is the suite every runtime.Runtime must pass, so the
// simulated runtime cannot drift from what containerd really does.
//
//	func TestSuite(t *testing.T) {
//		runtimetest.Run(t, func(t *testing.T) runtime.Runtime { … with BusyboxRef on it … })
//	}
package runtimetest
