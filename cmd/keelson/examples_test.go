package main

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/schema"
)

// examplesDir is the repository's examples folder, from this package.
const examplesDir = "../../examples"

// runnableExamples are the examples `make demo` runs (examples/ without what
// examples/.keelsonignore leaves out); of a kustomize example, the overlay
// that runs.
var runnableExamples = []string{"config", "cue", "daemonset", "hello", "helm", "jobs", "kustomize/overlays/production", "patterns/adapter", "patterns/ambassador", "patterns/sidecar", "statefulset", "two-tier"}

// validOnlyExamples are left out of make demo but must be valid: the
// kustomize example's other overlay.
var validOnlyExamples = []string{"kustomize/overlays/staging"}

// TestExamplesValidate checks every runnable example as keelson validate and
// the sync do (rendered, then validated): valid, with a README, and runnable
// offline (only the local busybox image, never pulled). Loading examples/ as
// a whole, as make demo's sync does, reads exactly these examples.
func TestExamplesValidate(t *testing.T) {
	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(examplesDir)
	r := render.New(render.Limits{})
	checkValidOnly(t, sch, r, fsys)
	for _, ex := range runnableExamples {
		t.Run(ex, func(t *testing.T) {
			if !hasReadme(fsys, ex) {
				t.Error("no README")
			}
			objs, err := loadExample(t, sch, r, fsys, ex)
			if err != nil {
				t.Fatalf("examples/%s is invalid:\n%v", ex, err)
			}
			if len(objs) == 0 {
				t.Fatalf("examples/%s has no objects", ex)
			}
			for _, o := range objs {
				for _, c := range podContainers(o) {
					if c.Image != ociarchive.BusyboxRef || c.ImagePullPolicy != corev1.PullIfNotPresent {
						t.Errorf("%s:%d: container %s: image %s, pull policy %s: want %s, IfNotPresent, to run offline",
							o.File, o.Line, c.Name, c.Image, c.ImagePullPolicy, ociarchive.BusyboxRef)
					}
				}
			}
		})
	}

	objs, err := loadExample(t, sch, r, fsys, ".")
	if err != nil {
		t.Fatalf("examples/ as make demo syncs it is invalid:\n%v", err)
	}
	var dirs []string
	for _, o := range objs {
		dir := exampleOf(objectDir(o))
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	if !slices.Equal(dirs, runnableExamples) {
		t.Errorf("syncing examples/ reads the folders %v, want the runnable examples %v", dirs, runnableExamples)
	}
	if b, err := os.ReadFile(filepath.Join(examplesDir, "README.md")); err != nil {
		t.Error(err)
	} else {
		for _, ex := range runnableExamples {
			if !strings.Contains(string(b), "("+ex+"/)") {
				t.Errorf("examples/README.md does not list %s", ex)
			}
		}
	}
}

// exampleOf is the runnable example a folder is in (a rendered object's
// file can be deeper than its example: a chart's template), or the folder.
func exampleOf(dir string) string {
	for _, ex := range runnableExamples {
		if dir == ex || strings.HasPrefix(dir, ex+"/") {
			return ex
		}
	}
	return dir
}

// checkValidOnly checks that the examples make demo leaves out are valid,
// hold objects and have a README.
func checkValidOnly(t *testing.T, sch *schema.Schema, r *render.Renderer, fsys fs.FS) {
	for _, ex := range validOnlyExamples {
		t.Run(ex, func(t *testing.T) {
			if objs, err := loadExample(t, sch, r, fsys, ex); err != nil || len(objs) == 0 || !hasReadme(fsys, ex) {
				t.Errorf("examples/%s: %d objects, README %v, problems: %v", ex, len(objs), hasReadme(fsys, ex), err)
			}
		})
	}
}

// objectDir is the folder of the example an object is in: its file's, or
// for an object a kustomization built (from a base), the kustomization's.
func objectDir(o *schema.Object) string {
	if k, ok := strings.CutPrefix(o.Via, "kustomization "); ok {
		return path.Dir(k)
	}
	return filepath.ToSlash(filepath.Dir(o.File))
}

// hasReadme reports whether example ex has a README in its folder or one
// above it (a kustomize example's, beside its base and overlays).
func hasReadme(fsys fs.FS, ex string) bool {
	for d := ex; d != "."; d = path.Dir(d) {
		if _, err := fs.Stat(fsys, d+"/README.md"); err == nil {
			return true
		}
	}
	return false
}

// loadExample loads the folder root of fsys as the sync does; its problems
// are the error.
func loadExample(t *testing.T, sch *schema.Schema, r *render.Renderer, fsys fs.FS, root string) ([]*schema.Object, error) {
	objs, problems, err := gitsync.Load(t.Context(), sch, r, fsys, []string{root})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return objs, nil
}

// podContainers are the containers of a pod or of a workload's template.
func podContainers(o *schema.Object) []corev1.Container {
	var spec *corev1.PodSpec
	switch v := o.Object.(type) {
	case *corev1.Pod:
		spec = &v.Spec
	case *appsv1.Deployment:
		spec = &v.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &v.Spec.Template.Spec
	case *appsv1.DaemonSet:
		spec = &v.Spec.Template.Spec
	default:
		return nil
	}
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}
