// Package etcdtest starts real etcd servers for tests: an embedded etcd shared by
// a test package, or a separate etcd process (Debian's etcd binary) to prove the
// store against an external cluster.
//
//	func TestMain(m *testing.M) { etcdtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		s := etcdtest.NewStore(t) // its own key prefix on the shared etcd
//		...
//	}
package etcdtest
