package schema

import "io/fs"

// CUEModule is keelson's CUE definitions as the module they are written in,
// keelson.dev/schema: cue.mod/module.cue, the types generated from k8s.io/api
// under cue.mod/gen, and the package kinds that narrows them (#Deployment,
// #Service, …). A renderer of CUE packages from Git offers it to them, so
// that a manifest can be written as kinds.#Deployment & {…} and be checked
// while it is evaluated. The files are read-only.
func CUEModule() fs.FS {
	sub, err := fs.Sub(cueFiles, "cue")
	if err != nil {
		return cueFiles // cannot happen: "cue" is a valid path, embedded above
	}
	return sub
}
