// Package runtime is the node agent's seam to the machine: the Containers and
// Images interfaces, implemented by package containerd (real containers through
// containerd and runc) and package sim (no processes, for scale and controller
// tests). Package runtimetest holds the suite both must pass.
//
//	rt, err := containerd.New(ctx, "/run/containerd/containerd.sock", "keelson")
//	if err != nil {
//		return err
//	}
//	defer rt.Close()
//	id, err := rt.Create(ctx, runtime.ContainerSpec{
//		PodUID: "…", PodNamespace: "default", PodName: "web", Name: "app",
//		Image: "localhost/busybox:latest", Command: []string{"httpd", "-f"},
//	})
//	if err != nil {
//		return err
//	}
//	err = rt.Start(ctx, id)
//	c, err := rt.Inspect(ctx, id) // c.State == runtime.StateRunning
package runtime
