package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

type planOptions struct {
	clientFlags
	repo, base, head, path string
	name, targetNamespace  string
	format, color          string
	server, token, caFile  string
	serviceCIDR            servicenet.CIDR
	nodePorts              servicenet.PortRange
	decryptionKeyFiles     []string
	requireEncrypted       bool
}

func newPlanCmd() *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan --base REF [--head REF] | --server URL",
		Short: "Show what a change in Git would do, before it is merged",
		Long: `plan validates the head revision of a repository and shows, object by object,
what merging it would do: objects created, changed (a diff of the YAML with
Kubernetes' defaults filled in) and deleted, what the cluster would do about
them (rolling updates, scaling, deletions), and the risks a reviewer should
look at first (deleted Namespaces, PersistentVolumeClaims and StatefulSets,
replicas to 0, changes of immutable fields, untagged or latest images,
objects changing owner, Secrets kept in Git, Service selectors that select
nothing). For Services it says which cluster IP and node ports they get and
which pods they select; an address or node port that is taken or out of
range is an error, as the sync would refuse it. Secret values never appear,
only which keys changed.

With --base, head is compared with another commit (a pull request's merge
base); only the files whose content differs are read. With --server, head is
compared with what the cluster holds now, read through its API with the
kubeconfig (or --token), the new pods are fitted onto the nodes' free
resources, and a revision that would break a namespace's ResourceQuota is
an error with the numbers, as the sync would refuse it.

Exit status: 0 no change, 1 changes, 2 head invalid, a change the cluster
would refuse, or an error.`,
		Example: `  keelson plan --repo . --base origin/main --head HEAD --path deploy
  keelson plan --base "$(git merge-base origin/main HEAD)" --format markdown > plan.md
  keelson plan --server https://127.0.0.1:7443 --head pr-12 --path deploy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	o.clientFlags.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "the local Git repository (work tree or bare)")
	f.StringVar(&o.base, "base", "", "the revision to compare with: a branch, tag or commit (usually the merge base)")
	f.StringVar(&o.head, "head", "HEAD", "the revision under review")
	f.StringVar(&o.path, "path", "", "the folder of the repository the sync reads (default: all of it)")
	f.StringVar(&o.name, "name", "default", "the sync's name, which owns its objects (label keelson.dev/source)")
	f.StringVar(&o.targetNamespace, "target-namespace", gitsync.DefaultNamespace, "namespace of objects that name none")
	f.StringVar(&o.format, "format", "text", "output: text, markdown or json")
	f.StringVar(&o.color, "color", "auto", "colour the text output: auto (on a terminal), always or never")
	f.StringVar(&o.server, "server", "", "compare head with the cluster at this API URL instead of with --base")
	f.StringVar(&o.token, "token", "", "bearer token for --server (default: the kubeconfig's)")
	f.StringVar(&o.caFile, "ca-file", "", "CA certificate for --server (default: the kubeconfig's)")
	f.Var(cidrFlag{&o.serviceCIDR}, "service-cidr", "the service CIDR new Services get cluster IPs from (default: the cluster's with --server, else 10.43.0.0/16)")
	f.Var(portRangeFlag{&o.nodePorts}, "service-node-port-range", "the node port range, FIRST-LAST (default 30000-32767)")
	f.StringArrayVar(&o.decryptionKeyFiles, "decryption-key-file", nil, "age keys that open the files encrypted with sops (without them, a changed ciphertext counts as a changed value; values are never shown)")
	f.BoolVar(&o.requireEncrypted, "require-encrypted-secrets", false, "report Secrets in files not encrypted with sops as errors, as a sync with requireEncryptedSecrets would")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	return cmd
}

func (o *planOptions) run(ctx context.Context, out io.Writer) error {
	switch {
	case o.format != "text" && o.format != "markdown" && o.format != "json":
		return usageErr("--format %q: want text, markdown or json", o.format)
	case o.color != "auto" && o.color != "always" && o.color != "never":
		return usageErr("--color %q: want auto, always or never", o.color)
	case o.base == "" && o.server == "":
		return usageErr("plan needs --base REF (compare with a commit) or --server URL (compare with the cluster)")
	case o.base != "" && o.server != "":
		return usageErr("--base and --server: give one, the revision or the cluster to compare with")
	}
	sch, err := schema.Default()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	opts := gitsync.PlanOptions{Schema: sch, Name: o.name, Path: strings.Trim(o.path, "/"), TargetNamespace: o.targetNamespace,
		ServiceCIDR: o.serviceCIDR, NodePorts: o.nodePorts, RequireEncryptedSecrets: o.requireEncrypted}
	if len(o.decryptionKeyFiles) > 0 {
		if opts.Decryption, err = sops.LoadKeyFiles(o.decryptionKeyFiles...); err != nil {
			return usageErr("--decryption-key-file: %v", err)
		}
	}
	var p *gitsync.Plan
	if o.server != "" {
		cl, cerr := o.cluster()
		if cerr != nil {
			return &exitError{code: 2, err: cerr}
		}
		p, err = gitsync.PlanCluster(ctx, o.repo, o.head, cl, opts)
	} else {
		p, err = gitsync.PlanGit(ctx, o.repo, o.base, o.head, opts)
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	switch o.format {
	case "json":
		err = p.WriteJSON(out)
	case "markdown":
		err = p.WriteMarkdown(out)
	default:
		err = p.WriteText(out, o.useColor(out))
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	switch {
	case p.Invalid():
		refused := 0
		for _, r := range p.Risks {
			if r.Level == gitsync.RiskError {
				refused++
			}
		}
		return &exitError{code: 2, err: fmt.Errorf("plan: %d problems in head, %d changes that would be refused", len(p.Errors), refused)}
	case p.HasChanges():
		return &exitError{code: 1, err: fmt.Errorf("plan: %d to create, %d to change, %d to delete", p.Created, p.Changed, p.Deleted)}
	}
	return nil
}

func (o *planOptions) useColor(out io.Writer) bool {
	switch o.color {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := out.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}

// cluster reads the cluster through its API: the kubeconfig's credentials,
// pointed at --server, or --token alone.
func (o *planOptions) cluster() (*apiCluster, error) {
	cfg, err := o.restConfig()
	if err != nil {
		if o.token == "" {
			return nil, err
		}
		cfg = &rest.Config{}
	}
	cfg.Host = o.server
	if o.token != "" {
		cfg.BearerToken, cfg.BearerTokenFile = o.token, ""
	}
	if o.caFile != "" {
		cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile = nil, o.caFile
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &apiCluster{client: dc.RESTClient(), url: o.server}, nil
}

// apiCluster lists objects through the read-only API, a page at a time.
type apiCluster struct {
	client rest.Interface
	url    string
}

func (c *apiCluster) String() string { return c.url }

// List returns every object of r; a resource the server does not serve
// has none.
func (c *apiCluster) List(ctx context.Context, r store.Resource) ([]store.Object, error) {
	p := "/apis/" + r.GVK.GroupVersion().String() + "/" + r.Plural
	if r.GVK.Group == "" {
		p = "/api/" + r.GVK.Version + "/" + r.Plural
	}
	var out []store.Object
	cont := ""
	for {
		req := c.client.Get().AbsPath(p).Param("limit", "500")
		if cont != "" {
			req = req.Param("continue", cont)
		}
		b, err := req.DoRaw(ctx)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var list struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("decode %s: %w", p, err)
		}
		for _, raw := range list.Items {
			obj, err := r.New()
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(raw, obj); err != nil {
				return nil, fmt.Errorf("decode an item of %s: %w", p, err)
			}
			out = append(out, obj)
		}
		if cont = list.Metadata.Continue; cont == "" {
			return out, nil
		}
	}
}
