package gitsync

import (
	"context"
	"errors"
	"io/fs"

	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/schema"
)

// load renders the kustomizations, Helm charts and CUE packages under roots
// and validates their objects with the plain manifests, as every reader of
// a revision must (the sync, plan): the rendering problems and the
// validation problems come back together, sorted, and the objects are
// valid only when both are empty.
func (s *Syncer) load(ctx context.Context, fsys fs.FS, roots []string, opts ...schema.Option) ([]*schema.Object, schema.ErrorList, error) {
	return Load(ctx, s.Schema, s.renderer(), fsys, roots, opts...)
}

// Load is the loading of a tree as a sync does it, for the commands that
// read trees the same way (keelson validate): r renders, s validates.
func Load(ctx context.Context, s *schema.Schema, r *render.Renderer, fsys fs.FS, roots []string, opts ...schema.Option) ([]*schema.Object, schema.ErrorList, error) {
	out := r.Render(ctx, fsys, roots)
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	opts = append(opts, schema.WithDocs(out.Docs), schema.WithSkip(out.Skip))
	objs, err := s.Load(ctx, fsys, roots, opts...)
	var problems schema.ErrorList
	if err != nil && !errors.As(err, &problems) {
		return nil, nil, err
	}
	problems = append(problems, out.Errors...)
	problems.Sort()
	return objs, problems, nil
}

// renderer returns the Syncer's Renderer, made on first use: its cache
// lives as long as the Syncer, so that unchanged units are not rendered
// again at the next revision.
func (s *Syncer) renderer() *render.Renderer {
	s.renderOnce.Do(func() {
		if s.Renderer == nil {
			s.Renderer = render.New(render.Limits{})
		}
	})
	return s.Renderer
}
