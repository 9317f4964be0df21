// Package render turns the parts of a tree that are not plain manifests into
// manifests: folders with a kustomization.yaml (built as `kustomize build`
// builds them), Helm charts named by HelmChart objects, and CUE packages. It
// works on the commit's tree in memory, with no network and no exec, so that
// a sync, `keelson validate` and `keelson plan` render a tree the same way.
//
// Render returns the rendered objects as schema.Docs, each pointing at the
// file a person edits, and the paths it read, which schema.Load must not read
// again as plain manifests:
//
//	out := r.Render(ctx, fsys, roots)
//	objs, err := s.Load(ctx, fsys, roots, schema.WithDocs(out.Docs), schema.WithSkip(out.Skip))
//	problems := append(out.Errors, ...) // rendering problems, each naming its file
//
// What is rendered, and what is left to Load:
//   - A folder with kustomization.yaml (or .yml, or Kustomization) is built,
//     and nothing below it is read as plain manifests. A kustomization that
//     another one of the tree reads (a base, a component) is not built on
//     its own: its objects arrive through the overlays that use it. Every
//     file a build reads is left out of the plain manifests.
//   - A folder with Chart.yaml is a Helm chart: never read as manifests, and
//     rendered once for each HelmChart object (keelson.dev/v1alpha1) that
//     names it. The HelmChart object itself is a manifest and is stored.
//   - .cue files are evaluated as CUE packages with the repository's
//     cue.mod, and each concrete object they export is a manifest.
//
// A Renderer remembers each unit's output with the content of everything
// the unit read (files, folder listings, names probed and absent), so that a
// commit touching none of a kustomization's inputs does not build it again.
// A large kustomization whose transformers act on one object at a time is
// built in parts, each remembered the same way, so that a commit changing
// one of its files builds one part; the parts' objects are the whole
// build's, in its order (kustomize_split.go says when a build is cut).
package render
