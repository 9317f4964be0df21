package sim

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archiveRefs returns the image names an OCI archive's index.json gives, or a
// Docker archive's manifest.json tags.
func archiveRefs(r io.Reader) ([]string, error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("import image archive: no index.json or manifest.json in it")
		}
		if err != nil {
			return nil, fmt.Errorf("import image archive: %w", err)
		}
		switch hdr.Name {
		case "index.json":
			var idx ocispec.Index
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("import image archive: index.json: %w", err)
			}
			var refs []string
			for _, m := range idx.Manifests {
				if name := m.Annotations["io.containerd.image.name"]; name != "" {
					refs = append(refs, name)
				}
			}
			return named(refs)
		case "manifest.json":
			var ms []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&ms); err != nil {
				return nil, fmt.Errorf("import image archive: manifest.json: %w", err)
			}
			var refs []string
			for _, m := range ms {
				refs = append(refs, m.RepoTags...)
			}
			return named(refs)
		}
	}
}

func named(refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("import image archive: it names no image (no io.containerd.image.name or repository tag)")
	}
	return refs, nil
}
