package memfs

import (
	"bytes"
	"io/fs"
	"time"
)

// Info describes a regular, read-only file of Size bytes.
type Info struct {
	FileName string
	FileSize int64
}

func (i Info) Name() string       { return i.FileName }
func (i Info) Size() int64        { return i.FileSize }
func (i Info) Mode() fs.FileMode  { return 0o444 }
func (i Info) ModTime() time.Time { return time.Time{} }
func (i Info) IsDir() bool        { return false }
func (i Info) Sys() any           { return nil }

// File is data opened as a file named name (the base name).
type File struct {
	*bytes.Reader
	info Info
}

// Open returns data as an open file named name.
func Open(name string, data []byte) *File {
	return &File{Reader: bytes.NewReader(data), info: Info{FileName: name, FileSize: int64(len(data))}}
}

func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *File) Close() error               { return nil }
