// Package netnstest makes network namespaces, links, routes and sockets for
// the tests of code that programs the kernel's network (the node proxy, pod
// routes). Each namespace is held by a bind mount under the test's temp dir
// and removed by t.Cleanup, with its links; nothing outlives the test.
//
//	node := netnstest.New(t, "node")
//	node.Bridge(t, "keelson0", "10.42.0.1/24")
//	pod := node.Pod(t, "pod1", "keelson0", "10.42.0.2/24", "10.42.0.1")
//	pod.ServeTCP(t, ":8080", "pod1")
//	reply, err := node.DialTCP("10.42.0.2:8080", time.Second) // "pod1"
package netnstest
