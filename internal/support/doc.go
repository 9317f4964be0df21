// Package support is the one list of kinds keelson accepts from Git and
// stores but does not act on yet (no controller or agent makes anything of
// them), each with a sentence saying what is missing. keelson's rule is that
// such an object says so instead of looking healthy or progressing for
// ever: the reconciler's health gives it the status Unsupported, gitsync's
// Sync status names the applied revision's objects of these kinds, and
// keelson plan flags each one it creates or changes (risk
// kind-not-acted-on). The list is its own package because gitsync may not
// import the reconciler.
//
//	if missing, ok := support.NotActedOn(schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}); ok {
//		fmt.Println(missing) // keelson stores Ingresses but routes no traffic for them yet: no ingress proxy listens
//	}
package support
