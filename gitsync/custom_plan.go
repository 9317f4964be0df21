package gitsync

import (
	"bytes"
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// untouchedCRDs reads the CRDs in the files a change leaves alone: a plan
// loads only the changed files of each side, and their custom resources are
// validated against the CRDs of the whole tree.
func (s *Syncer) untouchedCRDs(ctx context.Context, bl *blobs, head planTree, changed map[string]bool) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	others, err := s.loadUntouched(ctx, bl, head, changed, func(b []byte) bool {
		return bytes.Contains(b, []byte("CustomResourceDefinition"))
	})
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, d := range others {
		if crd, ok := d.obj.(*apiextensionsv1.CustomResourceDefinition); ok {
			out = append(out, crd)
		}
	}
	return out, nil
}
