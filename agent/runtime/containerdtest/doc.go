// Package containerdtest starts a private containerd for tests: its own root,
// state and socket under a temp dir, the machine's containerd and runc, and
// nothing shared with a containerd the machine may already run.
//
//	sock := containerdtest.Start(t) // skips, or fails under KEELSON_REQUIRE_CONTAINERD=1
//	rt, err := containerd.New(t.Context(), sock, "")
package containerdtest
