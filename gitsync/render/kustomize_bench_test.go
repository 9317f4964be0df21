package render

import (
	"fmt"
	"testing"
	"testing/fstest"
	"time"
)

// overlayTree is a base of n objects, one file each (half Deployments, half
// their Services), and an overlay with a prefix, a namespace, an image and
// a patch of every Deployment.
func overlayTree(n int) fstest.MapFS {
	fsys := fstest.MapFS{}
	res := "resources:\n"
	for i := range n {
		name := fmt.Sprintf("obj-%04d.yaml", i)
		res += "- " + name + "\n"
		fsys["base/"+name] = &fstest.MapFile{Data: benchObject(i, "shop/app:1")}
	}
	fsys["base/kustomization.yaml"] = &fstest.MapFile{Data: []byte(res)}
	fsys["overlays/prod/kustomization.yaml"] = &fstest.MapFile{Data: []byte(`resources: [../../base]
namePrefix: prod-
namespace: prod
images:
- name: shop/app
  newTag: "2"
patches:
- target:
    kind: Deployment
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
`)}
	return fsys
}

func benchObject(i int, image string) []byte {
	if i%2 == 1 {
		return fmt.Appendf(nil, "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-%d\nspec:\n  selector:\n    app: app-%d\n  ports:\n  - port: 80\n", i-1, i-1)
	}
	return fmt.Appendf(nil, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-%d
  template:
    metadata:
      labels:
        app: app-%d
    spec:
      containers:
      - name: app
        image: %s
`, i, i, i, image)
}

// BenchmarkKustomizeOverlay1000 renders an overlay of a base of 1,000
// objects: cold (a new Renderer each time), cached (an unchanged tree,
// which only re-checks the inputs), and after a one-file change of the base
// (the part of the split build holding the file is built again; the base is
// never built alone), and the same change with the build whole, side by
// side.
func BenchmarkKustomizeOverlay1000(b *testing.B) {
	fsys := overlayTree(1000)
	// A build takes seconds of CPU (krusty's checks are quadratic in the
	// objects): a machine shared with other builds must not turn the
	// measure into the default limit's error.
	lim := Limits{Timeout: 10 * time.Minute}
	check := func(b *testing.B, out *Output, rebuilt int) {
		if len(out.Errors) > 0 || len(out.Docs) != 1000 || out.Rebuilt != rebuilt {
			b.Fatalf("%d objects, rebuilt %d (want %d), errors %v", len(out.Docs), out.Rebuilt, rebuilt, out.Errors)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			check(b, New(lim).Render(b.Context(), fsys, nil), 1)
		}
	})
	b.Run("cached", func(b *testing.B) {
		r := New(lim)
		check(b, r.Render(b.Context(), fsys, nil), 1)
		for b.Loop() {
			check(b, r.Render(b.Context(), fsys, nil), 0)
		}
	})
	oneFile := func(b *testing.B) {
		r := New(lim)
		check(b, r.Render(b.Context(), fsys, nil), 1)
		i := 0
		for b.Loop() {
			i++
			fsys["base/obj-0500.yaml"] = &fstest.MapFile{Data: benchObject(500, fmt.Sprintf("shop/app:v%d", i))}
			check(b, r.Render(b.Context(), fsys, nil), 1)
		}
	}
	b.Run("one-file-change", oneFile)
	b.Run("one-file-change-whole", func(b *testing.B) {
		old := splitObjects
		splitObjects = 1 << 30
		defer func() { splitObjects = old }()
		oneFile(b)
	})
}
