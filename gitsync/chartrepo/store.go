package chartrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keelson/keelson/gitsync/render"
)

// store is what a Fetcher keeps on disk, so that a restart fetches nothing
// it had:
//
//	<dir>/archives/sha256-<hex>.tgz  archives, by digest
//	<dir>/pins/<hash>.json           the ref of an exact version, by repo, chart and version
//	<dir>/index/<hash>.yaml          the last index fetched of a repository, by URL
type store struct {
	dir string
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func nameOf(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// archivePath is where the archive of digest d is kept; "" for a digest
// that is not sha256 hex, which could name a path of its own choosing.
func (s *store) archivePath(d string) string {
	h, ok := strings.CutPrefix(d, "sha256:")
	if _, err := hex.DecodeString(h); !ok || err != nil || len(h) != 64 {
		return ""
	}
	return filepath.Join(s.dir, "archives", "sha256-"+h+".tgz")
}

// archive returns the archive of digest d kept on disk, checked again: a
// file damaged on disk is fetched anew rather than rendered.
func (s *store) archive(d string) ([]byte, bool) {
	p := s.archivePath(d)
	if p == "" {
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil || digestOf(data) != d {
		return nil, false
	}
	return data, true
}

func (s *store) keepArchive(d string, data []byte) error {
	p := s.archivePath(d)
	if p == "" {
		return fmt.Errorf("digest %q is not sha256", d)
	}
	return writeAtomic(p, data)
}

// pinned returns the ref an exact version resolved to before, when its
// archive is kept too: an exact version is immutable, so neither the index
// nor the archive is fetched again.
func (s *store) pinned(repo, chart, version string) (render.ChartRef, bool) {
	data, err := os.ReadFile(filepath.Join(s.dir, "pins", nameOf(repo, chart, version)+".json"))
	if err != nil {
		return render.ChartRef{}, false
	}
	var ref render.ChartRef
	if json.Unmarshal(data, &ref) != nil || s.archivePath(ref.Digest) == "" {
		return render.ChartRef{}, false
	}
	if _, err := os.Stat(s.archivePath(ref.Digest)); err != nil {
		return render.ChartRef{}, false
	}
	return ref, true
}

// pin remembers ref for an exact version; failing to is only a fetch more
// later, so it is not an error.
func (s *store) pin(repo, chart, version string, ref render.ChartRef) {
	data, err := json.Marshal(ref)
	if err == nil {
		_ = writeAtomic(filepath.Join(s.dir, "pins", nameOf(repo, chart, version)+".json"), data)
	}
}

func (s *store) indexPath(repo string) string {
	return filepath.Join(s.dir, "index", nameOf(repo)+".yaml")
}

func (s *store) index(repo string) ([]byte, bool) {
	data, err := os.ReadFile(s.indexPath(repo))
	return data, err == nil
}

func (s *store) keepIndex(repo string, data []byte) error {
	return writeAtomic(s.indexPath(repo), data)
}

// writeAtomic writes data to p through a temporary file renamed over it, so
// that a crash never leaves half a file to be read as whole.
func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("keep %s: %w", p, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("keep %s: %w", p, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keep %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keep %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("keep %s: %w", p, err)
	}
	return nil
}
