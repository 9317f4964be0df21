package ociarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxRef is the name the busybox image is imported under.
const BusyboxRef = "localhost/busybox:latest"

// epoch is the time of every entry, so the same busybox gives the same image.
var epoch = time.Unix(0, 0).UTC()

// BuildBusybox writes to w an OCI archive of a one-layer image named ref whose
// root holds the static busybox at busyboxPath as /bin/busybox, a link for each
// of its applets in /bin, /etc/passwd and /etc/group with root and nobody, and
// /tmp. The same binary gives a byte-identical archive.
func BuildBusybox(w io.Writer, busyboxPath, ref string) error {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w (is it a static busybox?)", busyboxPath, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	entries := []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bin},
		{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:\nnogroup:x:65534:\n")},
		{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{tar.Header{Name: "root/", Typeflag: tar.TypeDir, Mode: 0o700}, nil},
		{tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil},
	}
	for _, e := range entries {
		e.hdr.Size = int64(len(e.body))
		if err := writeEntry(lw, e.hdr, e.body); err != nil {
			return err
		}
	}
	for _, a := range applets {
		if a == "busybox" || strings.ContainsAny(a, "/") {
			continue
		}
		if err := writeEntry(lw, tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return err
		}
	}
	if err := lw.Close(); err != nil {
		return err
	}
	return Write(w, ref, layer.Bytes(), ocispec.ImageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"sh"},
	})
}

func writeEntry(tw *tar.Writer, hdr tar.Header, body []byte) error {
	hdr.ModTime, hdr.Format = epoch, tar.FormatPAX
	if err := tw.WriteHeader(&hdr); err != nil {
		return fmt.Errorf("tar %s: %w", hdr.Name, err)
	}
	if len(body) > 0 {
		if _, err := tw.Write(body); err != nil {
			return fmt.Errorf("tar %s: %w", hdr.Name, err)
		}
	}
	return nil
}

// Write writes an OCI archive of a single-layer image named ref for this
// machine's platform: layer is an uncompressed tar of the root filesystem.
func Write(w io.Writer, ref string, layer []byte, cfg ocispec.ImageConfig) error {
	layerDigest := digest.FromBytes(layer)
	config, err := json.Marshal(ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDigest}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    descriptor(ocispec.MediaTypeImageConfig, config),
		Layers:    []ocispec.Descriptor{descriptor(ocispec.MediaTypeImageLayer, layer)},
	})
	if err != nil {
		return err
	}
	md := descriptor(ocispec.MediaTypeImageManifest, manifest)
	md.Platform = &ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	md.Annotations = map[string]string{
		"io.containerd.image.name": ref,
		ocispec.AnnotationRefName:  refName(ref),
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{md},
	})
	if err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		body []byte
	}{
		{ocispec.ImageLayoutFile, layout},
		{"index.json", index},
		{blobPath(config), config},
		{blobPath(layer), layer},
		{blobPath(manifest), manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := writeEntry(tw, tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}, nil); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeEntry(tw, tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))}, f.body); err != nil {
			return err
		}
	}
	return tw.Close()
}

func descriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func blobPath(b []byte) string {
	return fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(b))
}

// refName is the tag part of ref, the OCI layout's own name for the image.
func refName(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}
