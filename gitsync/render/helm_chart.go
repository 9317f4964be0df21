package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
)

// Bounds of a chart folder, as Helm's own loader bounds a chart archive:
// a chart is read whole into memory before it renders.
const (
	maxChartDepth = 32
	maxChartFiles = 10_000
)

// utf8BOM is dropped from the start of chart files, as Helm's loader does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// loadedChart is a chart with where its parts are in the tree: the chart's
// folder or archive, and for each subchart vendored as a folder, that
// folder, so that an object names the template a person edits.
type loadedChart struct {
	chart *chart.Chart
	root  string // folder or archive in the tree
	// folders maps a subchart's path below root ("charts/db") to the
	// bytes of its Chart.yaml; archives lists the .tgz files of charts/
	// folders, below root.
	folders  map[string][]byte
	archives []string
	archive  bool
}

// loadChart reads the chart at p (a folder with Chart.yaml or a chart
// archive) through t.
func loadChart(t *Tree, p string) (*loadedChart, error) {
	info, err := t.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("no chart folder or archive at %s", p)
	}
	lc := &loadedChart{root: p, folders: map[string][]byte{}}
	if !info.IsDir() {
		data, err := t.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read the chart archive %s: %w", p, err)
		}
		if lc.chart, err = loader.LoadArchive(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("chart archive %s: %w", p, err)
		}
		lc.archive = true
		return lc, checkVendored(lc.chart)
	}
	if _, err := t.Stat(path.Join(p, chartFile)); err != nil {
		return nil, fmt.Errorf("%s is a folder without %s: not a chart", p, chartFile)
	}
	files, err := lc.readFolder(t)
	if err != nil {
		return nil, err
	}
	if lc.chart, err = loader.LoadFiles(files); err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	return lc, checkVendored(lc.chart)
}

// readFolder reads every file of the chart's folder that its .helmignore
// (and Helm's defaults) keep, as `helm template <folder>` reads it.
func (lc *loadedChart) readFolder(t *Tree) ([]*archive.BufferedFile, error) {
	rules := ignore.Empty()
	if data, err := t.ReadFile(path.Join(lc.root, ignore.HelmIgnore)); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(lc.root, ignore.HelmIgnore), err)
		}
	}
	rules.AddDefaults()
	w := &chartWalk{t: t, root: lc.root, rules: rules, budget: archive.MaxDecompressedChartSize}
	if err := w.walk("", 0); err != nil {
		return nil, err
	}
	for _, f := range w.files {
		dir, base := path.Split(f.Name)
		switch {
		case base == chartFile && strings.HasPrefix(dir, "charts/"):
			lc.folders[strings.TrimSuffix(dir, "/")] = f.Data
		case strings.HasPrefix(dir, "charts/") && strings.HasSuffix(base, ".tgz"):
			lc.archives = append(lc.archives, f.Name)
		}
	}
	return w.files, nil
}

// chartWalk walks a chart folder through the tree.
type chartWalk struct {
	t      *Tree
	root   string
	rules  *ignore.Rules
	budget int64
	files  []*archive.BufferedFile
}

func (w *chartWalk) walk(rel string, depth int) error {
	if depth > maxChartDepth {
		return fmt.Errorf("%s: more than %d folders deep (a symlink to a parent folder?)", path.Join(w.root, rel), maxChartDepth)
	}
	es, err := w.t.ReadDir(path.Join(w.root, rel))
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path.Join(w.root, rel), err)
	}
	for _, e := range es {
		name := path.Join(rel, e.Name())
		full := path.Join(w.root, name)
		info, err := w.info(e, full)
		if err != nil {
			return err
		}
		if w.rules.Ignore(name, info) {
			continue
		}
		if info.IsDir() {
			if err := w.walk(name, depth+1); err != nil {
				return err
			}
			continue
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", full)
		}
		if info.Size() > archive.MaxDecompressedFileSize {
			return fmt.Errorf("%s is larger than %d bytes, Helm's bound for a chart's file", full, archive.MaxDecompressedFileSize)
		}
		if len(w.files) >= maxChartFiles {
			return fmt.Errorf("chart %s has more than %d files", w.root, maxChartFiles)
		}
		data, err := w.t.ReadFile(full)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", full, err)
		}
		if w.budget -= int64(len(data)); w.budget < 0 {
			return fmt.Errorf("chart %s is larger than %d bytes, Helm's bound for a chart", w.root, archive.MaxDecompressedChartSize)
		}
		w.files = append(w.files, &archive.BufferedFile{Name: name, Data: bytes.TrimPrefix(data, utf8BOM)})
	}
	return nil
}

// info is what a folder entry is, following a symlink inside the tree.
func (w *chartWalk) info(e fs.DirEntry, full string) (fs.FileInfo, error) {
	if e.Type()&fs.ModeSymlink != 0 {
		info, err := w.t.Stat(full)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", full, err)
		}
		return info, nil
	}
	info, err := e.Info()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	return info, nil
}

// checkVendored requires every dependency of Chart.yaml (and of its
// subcharts) in the chart's charts/ folder: keelson renders offline.
func checkVendored(c *chart.Chart) error {
	have := map[string]bool{}
	for _, d := range c.Dependencies() {
		have[d.Name()] = true
	}
	var errs []error
	for _, d := range c.Metadata.Dependencies {
		if d == nil || have[d.Name] {
			continue
		}
		errs = append(errs, fmt.Errorf("dependency %s %s (from %s) of chart %s is not in its charts/ folder: keelson renders offline, so vendor it into the repository (`helm dependency build`)",
			d.Name, d.Version, d.Repository, c.ChartFullPath()))
	}
	for _, d := range c.Dependencies() {
		if err := checkVendored(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sourceOf returns the file of the tree a rendered template or CRD comes
// from, given its name in Helm's output ("web/charts/db/templates/x.yaml").
// Files inside an archive come from the archive.
func (lc *loadedChart) sourceOf(c *chart.Chart, name string) string {
	if lc.archive {
		return lc.root
	}
	return lc.source(c, lc.root, strings.TrimPrefix(name, c.Name()+"/"), "")
}

// source maps rel, a path below chart c (whose folder is dir in the tree,
// prefix below the root chart's folder), to the tree.
func (lc *loadedChart) source(c *chart.Chart, dir, rel, prefix string) string {
	sub, rest, ok := strings.Cut(strings.TrimPrefix(rel, "charts/"), "/")
	if !strings.HasPrefix(rel, "charts/") || !ok {
		return path.Join(dir, rel)
	}
	for _, d := range c.Dependencies() {
		if d.Name() != sub {
			continue
		}
		raw := chartYAML(d)
		for folder, data := range lc.folders {
			if path.Dir(folder) == path.Join(prefix, "charts") && bytes.Equal(data, raw) {
				return lc.source(d, path.Join(lc.root, folder), rest, folder)
			}
		}
		for _, a := range lc.archives {
			base := path.Base(a)
			if path.Dir(a) == path.Join(prefix, "charts") && (strings.HasPrefix(base, sub+"-") || base == sub+".tgz") {
				return path.Join(lc.root, a)
			}
		}
	}
	return path.Join(dir, "charts")
}

func chartYAML(c *chart.Chart) []byte {
	for _, f := range c.Raw {
		if f.Name == chartFile {
			return bytes.TrimPrefix(f.Data, utf8BOM)
		}
	}
	return nil
}

// readValues reads a values file as `helm template -f` reads one (its
// documents merged).
func readValues(data []byte) (map[string]any, error) {
	return loader.LoadValues(bytes.NewReader(data))
}

// mergeValues merges b over a, tables key by key, as Helm merges the
// values files of `-f a -f b`.
func mergeValues(a, b map[string]any) map[string]any { return loader.MergeMaps(a, b) }

// notExistText says "does not exist" for a missing file rather than the
// tree's error text.
func notExistText(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file in the repository"
	}
	return err.Error()
}
