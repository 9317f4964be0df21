package render

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/keelson/keelson/schema"
)

// errRemote is the error of a kustomization entry that names something
// outside the repository by URL.
var errRemote = errors.New("a remote base or file: keelson renders only from the repository's own files, with no network; " +
	"copy what it names into the repository and refer to it by a relative path")

// errHelmInKustomization is the error of a kustomization inflating a chart.
var errHelmInKustomization = errors.New("keelson does not inflate Helm charts inside a kustomization: " +
	"write a HelmChart object (keelson.dev/v1alpha1) naming the chart folder instead")

// scpUser is how a git URL in scp style begins (user@host:path), which
// kustomize clones.
var scpUser = regexp.MustCompile(`^[a-z][a-z0-9-]*@`)

// isRemote reports whether kustomize would fetch entry over the network
// (https://..., git::..., github.com/org/repo, git@host:repo) rather than
// read it from the tree.
func isRemote(entry string) bool {
	s := strings.ToLower(strings.TrimSpace(entry))
	if strings.HasPrefix(s, "git::") {
		return true
	}
	return strings.Contains(s, "://") || scpUser.MatchString(s) ||
		strings.HasPrefix(s, "github.com/") || strings.HasPrefix(s, "github.com:")
}

// kustEntry is one path written in a kustomization file.
type kustEntry struct {
	field string // e.g. "resources[2]"
	value string
	// dir is true where the path may be a folder (a base, a component, a
	// generator's kustomization) which kustomize then reads too.
	dir bool
	// plugin is true for generators, transformers and validators: their
	// configurations must be of kustomize's built-in kinds.
	plugin bool
	// inline is true for a document written in the entry itself.
	inline bool
}

// kustChecker walks the kustomizations a build will read, before krusty
// does: krusty would clone a remote base with git, fetch an https resource
// with its own HTTP client, and inflate charts, none of which keelson
// allows; and its errors for a path outside the tree are less clear than
// one naming the file and the entry.
type kustChecker struct {
	t    *Tree
	seen map[string]bool
	// stack is the chain of kustomization files from the entry to the one
	// being checked, for finding cycles.
	stack []string
	errs  schema.ErrorList
	// origins is whether the entry asks for origin annotations itself.
	origins bool
	// component is whether the entry is a Component, which kustomize
	// builds only inside the kustomizations that use it.
	component bool
}

// findKustomization returns the kustomization file of folder dir, "" when
// it has none.
func findKustomization(t *Tree, dir string) string {
	for _, name := range kustomizationNames {
		p := path.Join(dir, name)
		if info, err := t.Stat(p); err == nil && !info.IsDir() {
			return p
		}
	}
	return ""
}

// check checks the kustomization of folder dir and those it reads; from is
// the file that reads it ("" for the unit's entry).
func (c *kustChecker) check(dir, from string) {
	file := findKustomization(c.t, dir)
	if file == "" || c.seen[file] {
		return // a folder without one is krusty's to report
	}
	c.seen[file] = true
	c.stack = append(c.stack, file)
	defer func() { c.stack = c.stack[:len(c.stack)-1] }()
	data, err := c.t.ReadFile(file)
	if err != nil {
		c.fail(file, from, "cannot read: %v", err)
		return
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		c.fail(file, from, "%v", err)
		return
	}
	if from == "" {
		c.component = k.Kind == types.ComponentKind
		for _, m := range k.BuildMetadata {
			c.origins = c.origins || m == types.OriginAnnotations
		}
	}
	if len(k.HelmCharts) > 0 || k.HelmGlobals != nil || len(k.HelmChartInflationGenerator) > 0 {
		c.fail(file, from, "helmCharts: %v", errHelmInKustomization)
	}
	for _, e := range kustEntries(&k) {
		c.checkEntry(dir, file, from, e)
	}
}

func (c *kustChecker) checkEntry(dir, file, from string, e kustEntry) {
	if e.inline {
		c.checkPlugin(file, from, e, []byte(e.value))
		return
	}
	p, err := Join(dir, e.value)
	if err != nil {
		err = ErrOutside // Join's error repeats the entry
	}
	var info fs.FileInfo
	if err == nil {
		info, err = c.t.Stat(p)
	}
	switch {
	case isRemote(e.value) && (info == nil || info.IsDir()):
		// Even a folder of that name in the tree would be cloned by
		// krusty, which parses the entry as a git URL first.
		c.fail(file, from, "%s %s: %v", e.field, e.value, errRemote)
	case errors.Is(err, ErrOutside):
		c.fail(file, from, "%s %s: %v", e.field, e.value, err)
	case err != nil && e.dir:
		// Said here, since krusty would next try the path as a git URL.
		c.fail(file, from, "%s %s: no such file or folder in the repository", e.field, e.value)
	case err == nil && e.dir && info.IsDir():
		if k := findKustomization(c.t, p); slices.Contains(c.stack, k) {
			cycle := append(slices.Clone(c.stack[slices.Index(c.stack, k):]), k)
			c.fail(file, from, "%s %s: a cycle: %s", e.field, e.value, strings.Join(cycle, " reads "))
			return
		}
		c.check(p, file)
	case err == nil && e.plugin:
		if data, err := c.t.ReadFile(p); err == nil {
			c.checkPlugin(file, from, e, data)
		}
	}
}

// checkPlugin refuses a generator, transformer or validator configuration
// of a kind kustomize does not build in: krusty would look for it as an
// external plugin or a KRM function to run, which keelson never does.
func (c *kustChecker) checkPlugin(file, from string, e kustEntry, data []byte) {
	nodes, err := kio.FromBytes(data)
	if err != nil {
		return // krusty reports what does not parse
	}
	for _, n := range nodes {
		kind := n.GetKind()
		if kind == "HelmChartInflationGenerator" {
			c.fail(file, from, "%s %s: %v", e.field, e.value, errHelmInKustomization)
		} else if !slices.Contains(builtinPlugins(), kind) {
			name := e.value
			if e.inline {
				name = "(inline)"
			}
			c.fail(file, from, "%s %s: %s is not one of kustomize's built-in generators and transformers; "+
				"keelson runs no plugins and no KRM functions", e.field, name, kind)
		}
	}
}

// builtinPlugins are the kinds of kustomize's built-in generators and
// transformers.
var builtinPlugins = sync.OnceValue(krusty.GetBuiltinPluginNames)

func (c *kustChecker) fail(file, from, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if from != "" {
		msg += " (read by " + from + ")"
	}
	c.errs = append(c.errs, &schema.Error{File: file, Msg: msg})
}

// kustEntries lists the paths a kustomization names, with their fields.
func kustEntries(k *types.Kustomization) []kustEntry {
	var out []kustEntry
	add := func(field string, vals []string, dir, inline, plugin bool) {
		for i, v := range vals {
			isInline := inline && strings.ContainsAny(v, "\n{")
			if isInline && !plugin {
				continue // an inline patch: no path to check
			}
			out = append(out, kustEntry{field: fmt.Sprintf("%s[%d]", field, i), value: v, dir: dir && !isInline,
				plugin: plugin, inline: isInline})
		}
	}
	add("resources", k.Resources, true, false, false)
	add("bases", k.Bases, true, false, false)
	add("components", k.Components, true, false, false)
	add("crds", k.Crds, false, false, false)
	add("configurations", k.Configurations, false, false, false)
	add("generators", k.Generators, true, true, true)
	add("transformers", k.Transformers, true, true, true)
	add("validators", k.Validators, true, true, true)
	smp := make([]string, len(k.PatchesStrategicMerge))
	for i, p := range k.PatchesStrategicMerge {
		smp[i] = string(p)
	}
	add("patchesStrategicMerge", smp, false, true, false)
	for i, p := range k.Patches {
		if p.Path != "" {
			out = append(out, kustEntry{field: fmt.Sprintf("patches[%d].path", i), value: p.Path})
		}
	}
	for i, p := range k.PatchesJson6902 {
		if p.Path != "" {
			out = append(out, kustEntry{field: fmt.Sprintf("patchesJson6902[%d].path", i), value: p.Path})
		}
	}
	for i, r := range k.Replacements {
		if r.Path != "" {
			out = append(out, kustEntry{field: fmt.Sprintf("replacements[%d].path", i), value: r.Path})
		}
	}
	if p := k.OpenAPI["path"]; p != "" {
		out = append(out, kustEntry{field: "openapi.path", value: p})
	}
	for i, g := range k.ConfigMapGenerator {
		out = append(out, sourceEntries(fmt.Sprintf("configMapGenerator[%d]", i), g.KvPairSources)...)
	}
	for i, g := range k.SecretGenerator {
		out = append(out, sourceEntries(fmt.Sprintf("secretGenerator[%d]", i), g.KvPairSources)...)
	}
	return out
}

// sourceEntries lists the files a generator reads: files ("key=path" or
// "path") and env files.
func sourceEntries(field string, s types.KvPairSources) []kustEntry {
	var out []kustEntry
	for i, f := range s.FileSources {
		if _, p, ok := strings.Cut(f, "="); ok {
			f = p
		}
		out = append(out, kustEntry{field: fmt.Sprintf("%s.files[%d]", field, i), value: f})
	}
	for i, f := range s.EnvSources {
		out = append(out, kustEntry{field: fmt.Sprintf("%s.envs[%d]", field, i), value: f})
	}
	if s.EnvSource != "" {
		out = append(out, kustEntry{field: field + ".env", value: s.EnvSource})
	}
	return out
}
