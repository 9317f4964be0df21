package containerd

import (
	"context"
	"fmt"
	"io"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/keelson/keelson/agent/runtime"
)

// Image implements runtime.Images.
func (r *Runtime) Image(ctx context.Context, ref string) (runtime.Image, error) {
	ctx = r.ns(ctx)
	img, err := r.client.GetImage(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return runtime.Image{}, fmt.Errorf("image %s: %w", ref, runtime.ErrImageNotFound)
		}
		return runtime.Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return describe(ctx, img)
}

func describe(ctx context.Context, img containerd.Image) (runtime.Image, error) {
	cfg, err := img.Config(ctx)
	if err != nil {
		return runtime.Image{}, fmt.Errorf("image %s config: %w", img.Name(), err)
	}
	return runtime.Image{Ref: img.Name(), ID: cfg.Digest.String()}, nil
}

// Pull implements runtime.Images: it fetches and unpacks the image.
func (r *Runtime) Pull(ctx context.Context, ref string) (runtime.Image, error) {
	ctx = r.ns(ctx)
	img, err := r.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.snapshotter))
	if err != nil {
		if errdefs.IsNotFound(err) || isNotFoundMessage(err) {
			return runtime.Image{}, fmt.Errorf("pull %s: %w: %v", ref, runtime.ErrImageNotFound, err)
		}
		return runtime.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return describe(ctx, img)
}

// Import implements runtime.Images: it loads an OCI or Docker archive and
// unpacks what it held, so containers can start from it at once.
func (r *Runtime) Import(ctx context.Context, archive io.Reader) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.client.Import(ctx, archive)
	if err != nil {
		return nil, fmt.Errorf("import image archive: %w", err)
	}
	var out []runtime.Image
	for _, i := range imgs {
		img := containerd.NewImage(r.client, i)
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", i.Name, err)
		}
		d, err := describe(ctx, img)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("import image archive: it names no image (no io.containerd.image.name or repository tag)")
	}
	return out, nil
}
