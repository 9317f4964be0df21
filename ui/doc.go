// Package ui is keelson's read-only web view, served by the API server at
// /ui/: every Git source with its state, health and revisions (commit,
// author, time), its sync history and errors with file:line (linked to the
// file at that revision on GitHub, GitLab, Bitbucket, Gitea and Forgejo),
// the tree of each source's objects and what controllers made under them,
// coloured by health, a page per pod with its conditions, events and a log
// that follows the container, a page per object with its manifest's place
// in Git, the nodes with capacity and usage, and a search over names and
// labels.
//
// The view is a client of the API like kubectl: a person signs in with the
// token of their kubeconfig, kept in an HttpOnly, SameSite=Strict cookie,
// and every read goes through the API's own handler in this process with
// that token, so the API's authentication and grants decide what they see.
// It never reads Secrets. It never writes; its only forms (sign in, sign
// out) refuse cross-origin posts.
//
// Pages are rendered on the server with html/template; a small script
// (static/app.js, no framework and no build step) keeps them live: each page
// names the collections it shows and the resourceVersions it read them at,
// the server watches them through the API and sends a server-sent event when
// one changes, and the script fetches the page's main element again. All
// files are embedded in the binary.
//
//	v := ui.New(ui.Config{API: apiHandler, Logger: log})
//	mux.Handle(ui.Prefix, v)
package ui
