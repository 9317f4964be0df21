package sim_test

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

func ociarchiveConfig() ocispec.ImageConfig { return ocispec.ImageConfig{Cmd: []string{"sh"}} }
