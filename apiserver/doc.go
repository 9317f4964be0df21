// Package apiserver serves keelson's HTTP API: health, readiness, metrics and
// version, and the read-only status API in the Kubernetes REST dialect, so that
// kubectl, client-go informers and dashboards work against keelson.
//
// People only read: discovery (classic and aggregated), get, list and watch of
// every kind the store keeps, with label and field selectors, pages, Table
// output and Status errors. Their writes get 405, since Git is the only write
// path. Node agents (users system:node:<name>) may write their own Node, lease,
// the status of pods bound to them, deletions of those pods, the local-path
// PersistentVolumes they provision, and Events.
//
// With Config.UI it also serves the read-only web view (package ui) under
// /ui/, which reads through this handler as each signed-in person.
//
// Lists and watches are served from one watch cache per resource: a single
// etcd watch keeps every object and a bounded window of recent events in
// memory and fans them out to every client; a client that falls too far
// behind is dropped with an ERROR event rather than holding up the others.
//
//	srv := apiserver.New(apiserver.Config{
//		Addr:   "127.0.0.1:7443",
//		Logger: log,
//		Store:  st,
//		Tokens: tokens, // apiserver.LoadTokens("tokens.csv")
//		TLS:    tlsCfg, // apiserver.EnsureTLS(apiserver.TLSFilesIn(dataDir), nil)
//	})
//	l, err := srv.Listen()
//	if err != nil {
//		return err
//	}
//	return srv.Serve(ctx, l) // until ctx ends
package apiserver
