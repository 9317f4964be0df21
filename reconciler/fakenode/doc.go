// Package fakenode stands in for node agents in controller tests: it binds
// every pod it sees to a fake node and marks it Running and Ready, or, when
// told, finished with an exit code, and (Options.Terminate) removes its
// pods marked for deletion, writing through the store as an agent would
// through the API.
//
//	fakenode.Start(ctx, st, fakenode.Options{})
package fakenode
