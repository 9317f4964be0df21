package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

func main() {
	out := flag.String("o", "bin/images/busybox.tar", "archive to write")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary")
	ref := flag.String("ref", ociarchive.BusyboxRef, "image name")
	flag.Parse()
	if err := run(*out, *busybox, *ref); err != nil {
		fmt.Fprintf(os.Stderr, "busybox-image: %v\n", err)
		os.Exit(1)
	}
}

func run(out, busybox, ref string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := ociarchive.BuildBusybox(f, busybox, ref); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
