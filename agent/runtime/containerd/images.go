package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keelson/keelson/agent/registry"
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
	return runtime.Image{Ref: img.Name(), ID: cfg.Digest.String(), Digest: img.Target().Digest.String()}, nil
}

// ListImages implements runtime.Images, with each image's size: what its
// blobs for this platform take in the content store.
func (r *Runtime) ListImages(ctx context.Context) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		d, err := describe(ctx, img)
		if err != nil {
			continue // being pulled or deleted: not usable yet
		}
		d.Size, _ = img.Size(ctx)
		out = append(out, d)
	}
	return out, nil
}

// RemoveImage implements runtime.Images. The deletion collects garbage
// synchronously, so the space is free when it returns.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	if err := r.client.ImageService().Delete(r.ns(ctx), ref, images.SynchronousDelete()); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", ref, runtime.ErrImageNotFound)
		}
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// Pull implements runtime.Images: it fetches the image through the node's
// registries (mirrors first), trying each credential in turn, and unpacks
// it.
func (r *Runtime) Pull(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error) {
	ctx = r.ns(ctx)
	creds := opts.Credentials
	if len(creds) == 0 {
		creds = []registry.Credential{{}} // anonymous, or the registries file's
	}
	var errs []error
	for _, cred := range creds {
		img, err := r.pull(ctx, ref, cred, opts.Progress)
		if err == nil {
			return img, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, runtime.ErrUnauthorized) {
			break // only a refused credential is worth trying the next for
		}
	}
	return runtime.Image{}, errors.Join(errs...)
}

func (r *Runtime) pull(ctx context.Context, ref string, cred registry.Credential, report func(int64, int64)) (runtime.Image, error) {
	opts := []containerd.RemoteOpt{
		containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.snapshotter),
		containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts.forCredential(cred)})),
	}
	if report != nil {
		p := &progress{report: report}
		opts = append(opts, containerd.WithImageHandlerWrapper(p.wrap))
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { p.poll(ctx, r.client.ContentStore(), done) })
		defer func() {
			close(done)
			wg.Wait()
			p.sample(ctx, r.client.ContentStore()) // all of it, once pulled
		}()
	}
	img, err := r.client.Pull(ctx, ref, opts...)
	if err != nil {
		from := ""
		if cred.From != "" {
			from = " with the credential of " + cred.From
		}
		switch {
		case errdefs.IsNotFound(err) || isNotFoundMessage(err):
			return runtime.Image{}, fmt.Errorf("pull %s%s: %w: %v", ref, from, runtime.ErrImageNotFound, err)
		case isUnauthorized(err):
			return runtime.Image{}, fmt.Errorf("pull %s%s: %w: %v", ref, from, runtime.ErrUnauthorized, err)
		}
		return runtime.Image{}, fmt.Errorf("pull %s%s: %w", ref, from, err)
	}
	return describe(ctx, img)
}

// isUnauthorized recognises a registry's refusal of the credentials
// presented (or of none).
func isUnauthorized(err error) bool {
	if errors.Is(err, docker.ErrInvalidAuthorization) || errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "403 Forbidden")
}

// progress follows a pull: the manifest's blobs (seen through a handler
// wrapper) make the total, and what the content store holds of each, done
// or being written, what is fetched. Layers are fetched by the unpacker,
// outside the handlers, so the store is polled.
type progress struct {
	report func(fetched, total int64)
	mu     sync.Mutex
	blobs  []ocispec.Descriptor
	last   int64
}

func (p *progress) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		if err == nil && images.IsManifestType(desc.MediaType) {
			p.mu.Lock()
			p.blobs = append(p.blobs, children...)
			p.mu.Unlock()
		}
		return children, err
	})
}

// poll reports progress every interval until done is closed.
func (p *progress) poll(ctx context.Context, store content.Store, done <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			p.sample(ctx, store)
		}
	}
}

func (p *progress) sample(ctx context.Context, store content.Store) {
	p.mu.Lock()
	blobs := slices.Clone(p.blobs)
	p.mu.Unlock()
	if len(blobs) == 0 {
		return
	}
	writing := map[digest.Digest]int64{}
	if sts, err := store.ListStatuses(ctx); err == nil {
		for _, st := range sts {
			writing[st.Expected] = st.Offset
		}
	}
	var fetched, total int64
	for _, b := range blobs {
		total += b.Size
		if _, err := store.Info(ctx, b.Digest); err == nil {
			fetched += b.Size
		} else {
			fetched += writing[b.Digest]
		}
	}
	if fetched > p.last {
		p.last = fetched
		p.report(fetched, total)
	}
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
