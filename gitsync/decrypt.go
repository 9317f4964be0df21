package gitsync

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/memfs"
	"github.com/keelson/keelson/schema"
)

// decrypted is a revision's files with those encrypted with sops replaced
// by their plain content, which lives in memory for the one load.
type decrypted struct {
	fs.FS
	plain map[string][]byte // by path, the files that were encrypted
}

// decrypt finds the sops-encrypted manifests (YAML and JSON) under roots
// and decrypts them with the sync's keys. It returns fsys as the loaders
// must read it, the paths that were encrypted, and one problem per file
// that could not be decrypted (no key opens it, changed without the key,
// no keys at all), naming the file and never a value. With seal and no
// keys, as a plan run where no key is, each encrypted value reads as a
// digest of its ciphertext instead (sops.Sealed).
func (s *Syncer) decrypt(fsys fs.FS, roots []string, seal bool) (fs.FS, map[string]bool, schema.ErrorList) {
	if len(roots) == 0 {
		roots = []string{"."}
	}
	d := &decrypted{FS: fsys, plain: map[string][]byte{}}
	var problems schema.ErrorList
	for _, root := range roots {
		fs.WalkDir(fsys, root, func(name string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !isManifestFile(name) {
				return nil
			}
			data, err := fs.ReadFile(fsys, name)
			if err != nil || !sops.IsEncrypted(name, data) {
				return nil
			}
			if s.Decryption == nil && seal {
				sealed, err := sops.Sealed(name, data)
				if err != nil {
					problems = append(problems, &schema.Error{File: name, Msg: "cannot read its sops metadata: " + strings.TrimPrefix(err.Error(), name+": ")})
					return nil
				}
				d.plain[name] = sealed
				return nil
			}
			if s.Decryption == nil {
				problems = append(problems, &schema.Error{File: name,
					Msg: "encrypted with sops, but the server holds no decryption key (keelson server --decryption-key-file)"})
				return nil
			}
			plain, err := s.Decryption.Decrypt(name, data)
			if err != nil {
				problems = append(problems, &schema.Error{File: name, Msg: "cannot decrypt: " + strings.TrimPrefix(err.Error(), name+": ")})
				return nil
			}
			d.plain[name] = plain
			return nil
		})
	}
	encrypted := make(map[string]bool, len(d.plain))
	for name := range d.plain {
		encrypted[name] = true
	}
	if len(d.plain) == 0 {
		return fsys, encrypted, problems
	}
	return d, encrypted, problems
}

// SealEncrypted returns fsys with each file encrypted with sops under
// roots readable without a key, its values sealed (sops.Sealed), and a
// problem per such file whose sops metadata cannot be read: for the
// readers that check manifests and hold no key (keelson validate).
func SealEncrypted(fsys fs.FS, roots []string) (fs.FS, schema.ErrorList) {
	out, _, problems := (&Syncer{}).decrypt(fsys, roots, true)
	return out, problems
}

func isManifestFile(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// plainSecrets are the problems of a sync that requires encrypted Secrets:
// one per Secret written in a file that was not encrypted.
func plainSecrets(objs []*schema.Object, encrypted map[string]bool) schema.ErrorList {
	var out schema.ErrorList
	for _, o := range objs {
		if o.Kind != "Secret" || encrypted[o.File] {
			continue
		}
		out = append(out, &schema.Error{File: o.File, Line: o.Line, Doc: o.Doc, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Via: o.Via,
			Msg: "not encrypted with sops: this sync requires encrypted Secrets (requireEncryptedSecrets)"})
	}
	return out
}

func (d *decrypted) Open(name string) (fs.File, error) {
	if b, ok := d.plain[name]; ok {
		return memfs.Open(path.Base(name), b), nil
	}
	return d.FS.Open(name)
}

func (d *decrypted) ReadFile(name string) ([]byte, error) {
	if b, ok := d.plain[name]; ok {
		return bytes.Clone(b), nil
	}
	return fs.ReadFile(d.FS, name)
}

func (d *decrypted) Stat(name string) (fs.FileInfo, error) {
	if b, ok := d.plain[name]; ok {
		return memfs.Info{FileName: path.Base(name), FileSize: int64(len(b))}, nil
	}
	return fs.Stat(d.FS, name)
}

func (d *decrypted) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(d.FS, name)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if b, ok := d.plain[path.Join(name, e.Name())]; ok {
			entries[i] = fs.FileInfoToDirEntry(memfs.Info{FileName: e.Name(), FileSize: int64(len(b))})
		}
	}
	return entries, nil
}
