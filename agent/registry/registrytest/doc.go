// Package registrytest runs an in-process OCI registry for tests, holding
// the busybox image keelson's tests run, with or
// without basic authentication, and counts the manifests it serves.
//
//	reg := registrytest.Start(t, map[string]string{"puller": "s3cret"})
//	ref := reg.PushBusybox(t, "team/app", "1") // 127.0.0.1:PORT/team/app:1
//	rt := ... containerd.WithRegistries(reg.Registries(t))
package registrytest
