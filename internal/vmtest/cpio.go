package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// An entry is one file of the initramfs: a regular file copied from the
// host (src) or given inline (data), a directory, a symlink or a device node.
type entry struct {
	mode         uint32 // type and permission bits, as in stat(2)
	src          string // host file to copy, for a regular file without data
	data         []byte // contents, or a symlink's target
	major, minor uint32 // device number, for a device node
}

// tree is the initramfs to write, by path without the leading slash.
type tree map[string]entry

func (tr tree) dir(name string) {
	for d := name; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if _, ok := tr[d]; !ok {
			tr[d] = entry{mode: syscall.S_IFDIR | 0o755}
		}
	}
}

// file adds the host file src as name, with its parent directories.
func (tr tree) file(name, src string, perm uint32) {
	name = strings.TrimPrefix(name, "/")
	tr.dir(path.Dir(name))
	tr[name] = entry{mode: syscall.S_IFREG | perm, src: src}
}

func (tr tree) inline(name string, data []byte, perm uint32) {
	name = strings.TrimPrefix(name, "/")
	tr.dir(path.Dir(name))
	tr[name] = entry{mode: syscall.S_IFREG | perm, data: data}
}

func (tr tree) symlink(name, target string) {
	name = strings.TrimPrefix(name, "/")
	tr.dir(path.Dir(name))
	tr[name] = entry{mode: syscall.S_IFLNK | 0o777, data: []byte(target)}
}

func (tr tree) chardev(name string, major, minor uint32) {
	name = strings.TrimPrefix(name, "/")
	tr.dir(path.Dir(name))
	tr[name] = entry{mode: syscall.S_IFCHR | 0o600, major: major, minor: minor}
}

// writeCPIO writes tr to out as an uncompressed cpio archive in the "newc"
// format the kernel unpacks into its initial root: each entry a 110-byte
// ASCII header of thirteen 8-digit hex fields, its NUL-terminated name, its
// contents, each padded to 4 bytes, and a closing entry named TRAILER!!!.
// Parents come before their children because the names are sorted.
// Uncompressed, because the guest unpacks it under emulation, where gzip
// costs more time than copying the larger image.
func writeCPIO(out string, tr tree) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	names := make([]string, 0, len(tr))
	for name := range tr {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		if err := writeEntry(w, uint32(i+1), name, tr[name]); err != nil {
			f.Close()
			return fmt.Errorf("initramfs %s: %w", name, err)
		}
	}
	if err := writeHeader(w, 0, "TRAILER!!!", entry{}, 0); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeEntry(w *bufio.Writer, ino uint32, name string, e entry) error {
	if e.mode&syscall.S_IFMT != syscall.S_IFREG || e.src == "" {
		if err := writeHeader(w, ino, name, e, int64(len(e.data))); err != nil {
			return err
		}
		w.Write(e.data)
		return pad(w, int64(len(e.data)))
	}
	src, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > 0xffffffff {
		return fmt.Errorf("%s is %d bytes, more than newc's 4 GiB", e.src, fi.Size())
	}
	if err := writeHeader(w, ino, name, e, fi.Size()); err != nil {
		return err
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return err
	}
	if n != fi.Size() {
		return fmt.Errorf("%s changed size while copied", e.src)
	}
	return pad(w, n)
}

func writeHeader(w *bufio.Writer, ino uint32, name string, e entry, size int64) error {
	nlink := 1
	if e.mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	_, err := fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, nlink, 0, size, 0, 0, e.major, e.minor, len(name)+1, 0)
	if err != nil {
		return err
	}
	w.WriteString(name)
	w.WriteByte(0)
	return pad(w, int64(110+len(name)+1))
}

// pad writes the zeros that bring n bytes up to a multiple of 4.
func pad(w *bufio.Writer, n int64) error {
	_, err := w.Write(make([]byte, (4-n%4)%4))
	return err
}
