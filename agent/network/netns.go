package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// NewNetNS makes a network namespace that lives without a process, held by a
// bind mount at path (as `ip netns add` does), for a pod's containers to join.
func NewNetNS(path string) error { return newNS(path, unix.CLONE_NEWNET, "net") }

// NewIPCNS makes an IPC namespace held at path, as NewNetNS does.
func NewIPCNS(path string) error { return newNS(path, unix.CLONE_NEWIPC, "ipc") }

func newNS(path string, flag int, kind string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// Only this thread changes namespace, and it goes back before it is
		// unlocked; if it cannot, it stays locked and Go discards it.
		goruntime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), unix.Gettid(), kind)
		orig, err := os.Open(self)
		if err != nil {
			errc <- fmt.Errorf("open current %s namespace: %w", kind, err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(flag); err != nil {
			errc <- fmt.Errorf("unshare %s namespace: %w", kind, err)
			return
		}
		err = unix.Mount(self, path, "none", unix.MS_BIND, "")
		if serr := unix.Setns(int(orig.Fd()), flag); serr == nil {
			goruntime.UnlockOSThread()
		}
		if err != nil {
			errc <- fmt.Errorf("bind-mount %s namespace at %s: %w", kind, path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// InNetNS runs fn on an OS thread inside the network namespace at path:
// sockets fn opens belong to that namespace for their whole life, whichever
// thread uses them later. The thread goes back to its own namespace before
// it is unlocked; one that cannot ends with its goroutine, locked, so that
// no other goroutine runs in the wrong namespace.
func InNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		orig, err := os.Open(self)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread() // still in its own namespace
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// RemoveNetNS releases a namespace made by NewNetNS or NewIPCNS. A path that
// is already gone is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}
