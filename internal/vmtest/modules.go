package vmtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// baseModules are the kernel modules every VM loads: the kernel builds them
// as modules, and containerd's default snapshotter needs overlay.
var baseModules = []string{"overlay"}

// moduleName is the name modprobe knows a module file by: its base name
// without .ko and a compression suffix, with '-' read as '_'.
func moduleName(file string) string {
	name := path.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		name = strings.TrimSuffix(name, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

// depmod is a kernel's modules.dep: each module file (relative to the
// modules dir) with the files it needs loaded first.
type depmod struct {
	files   map[string]string   // module name → file
	deps    map[string][]string // file → files it needs
	builtin map[string]bool     // module names built into the kernel
}

func readDepmod(dir string) (*depmod, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("%w (run hack/vm-kernel.sh, or depmod for that kernel)", err)
	}
	defer f.Close()
	d := &depmod{files: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		file, needs, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		d.files[moduleName(file)] = file
		d.deps[file] = strings.Fields(needs)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// modules.builtin is optional: without it a built-in module is an error.
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			d.builtin[moduleName(line)] = true
		}
	}
	return d, nil
}

// order returns the module files to load for names, each after the ones it
// needs, each once. Built-in modules need no file.
func (d *depmod) order(names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var visit func(file string)
	visit = func(file string) {
		if seen[file] {
			return
		}
		seen[file] = true
		for _, dep := range d.deps[file] {
			visit(dep)
		}
		out = append(out, file)
	}
	for _, name := range names {
		name = strings.ReplaceAll(name, "-", "_")
		file, ok := d.files[name]
		if !ok {
			if d.builtin[name] {
				continue
			}
			return nil, fmt.Errorf("kernel module %s: not in modules.dep", name)
		}
		visit(file)
	}
	return out, nil
}

// addModules puts the module files for names, plain, into tr under
// /lib/modules, and returns the guest paths in load order. A compressed
// module is unpacked on the host with xz, zstd or gzip, since busybox's
// insmod may lack the decompressor.
func addModules(tr tree, modDir, tmp string, names []string) ([]string, error) {
	d, err := readDepmod(modDir)
	if err != nil {
		return nil, err
	}
	files, err := d.order(names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", modDir, err)
	}
	var guest []string
	for _, file := range files {
		src := filepath.Join(modDir, file)
		if plain, err := decompress(src, tmp); err != nil {
			return nil, err
		} else if plain != "" {
			src = plain
		}
		name := "/lib/modules/" + moduleName(file) + ".ko"
		tr.file(name, src, 0o644)
		guest = append(guest, name)
	}
	return guest, nil
}

// decompress unpacks a compressed module into tmp and returns the plain
// file, or "" when src is not compressed.
func decompress(src, tmp string) (string, error) {
	var tool string
	switch filepath.Ext(src) {
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return "", nil
	}
	out := filepath.Join(tmp, moduleName(src)+".ko")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cmd := exec.Command(tool, "-d", "-c", src)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("unpack %s with %s (apt-get install xz-utils zstd): %v %s", src, tool, err, stderr.String())
	}
	return out, f.Close()
}
