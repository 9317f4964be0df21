// Package reconciler is the controller runtime (informers over store watches, a
// work queue, leader election), the controllers that turn declared objects into
// pods, and the scheduler. It never calls containerd.
package reconciler
