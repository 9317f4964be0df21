package render

import (
	"bytes"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/keelson/keelson/schema"
)

// kustomizationNames are the file names that make a folder a kustomization,
// in the order kustomize looks for them.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// chartFile makes a folder a Helm chart.
const chartFile = "Chart.yaml"

// cueModule is the folder of a CUE module's metadata and dependencies.
const cueModule = "cue.mod"

// helmChartMarker is in every file that may hold a HelmChart object; files
// without it are not parsed twice.
var helmChartMarker = []byte("HelmChart")

// findUnits walks root and returns the units to render, and the paths that
// are not plain manifests whatever the units read: the folders of
// kustomizations and charts, the CUE files and module.
func findUnits(fsys fs.FS, root string) ([]unit, []string, schema.ErrorList) {
	var units []unit
	var skip []string
	var errs schema.ErrorList
	ign := schema.NewIgnorer(fsys)
	cueDirs := map[string]bool{}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // Load reports unreadable paths
		}
		if p != root && ign.Ignored(p, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return enterDir(fsys, root, p, d, ign, &units, &skip)
		}
		switch {
		case strings.EqualFold(path.Ext(p), ".cue"):
			skip = append(skip, p)
			if dir := path.Dir(p); !cueDirs[dir] {
				cueDirs[dir] = true
				units = append(units, unit{kind: kindCUE, entry: dir})
			}
		case isYAML(p) && holdsHelmChart(fsys, p):
			units = append(units, unit{kind: kindHelm, entry: p})
		}
		return nil
	})
	if err != nil {
		errs = append(errs, &schema.Error{File: root, Msg: err.Error()})
	}
	return units, skip, errs
}

// enterDir decides what a folder is: a kustomization or a chart (a unit or
// skipped, and not walked), a CUE module's metadata (skipped), hidden
// (skipped), or a folder to walk.
func enterDir(fsys fs.FS, root, p string, d fs.DirEntry, ign *schema.Ignorer, units *[]unit, skip *[]string) error {
	if p != root && strings.HasPrefix(d.Name(), ".") {
		return fs.SkipDir
	}
	if d.Name() == cueModule {
		*skip = append(*skip, p)
		return fs.SkipDir
	}
	// One listing answers the questions below: a folder's Stat for each name
	// cost a walk of 2,000 folders 8,000 lookups at every sync.
	names := map[string]bool{}
	if es, err := fs.ReadDir(fsys, p); err == nil {
		for _, e := range es {
			names[e.Name()] = true
		}
	}
	if names[chartFile] {
		*skip = append(*skip, p)
		return fs.SkipDir
	}
	for _, name := range kustomizationNames {
		if names[name] {
			*units = append(*units, unit{kind: kindKustomize, entry: p})
			*skip = append(*skip, p)
			return fs.SkipDir
		}
	}
	ign.Enter(p)
	return nil
}

func isYAML(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

// holdsHelmChart looks for the marker in p through a buffer of the pool:
// reading every YAML file whole at every sync copied a repository's worth
// of bytes each time.
func holdsHelmChart(fsys fs.FS, p string) bool {
	f, err := fsys.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	bp := scanBuffers.Get().(*[]byte)
	defer scanBuffers.Put(bp)
	buf := *bp
	keep := len(helmChartMarker) - 1 // a marker may straddle two reads
	n := 0
	for {
		m, err := f.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], helmChartMarker) {
			return true
		}
		if err != nil {
			return false
		}
		if n > keep {
			n = copy(buf, buf[n-keep:n])
		}
	}
}

var scanBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
