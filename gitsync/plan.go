package gitsync

import (
	"bytes"
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// PlanOptions describe the sync a plan is for.
type PlanOptions struct {
	// Schema validates the manifests. Required.
	Schema *schema.Schema
	// Name of the sync (label keelson.dev/source); "default" when empty.
	Name string
	// Path is the folder of the repository the sync reads; the whole tree
	// when empty.
	Path string
	// TargetNamespace is given to namespaced objects that name none;
	// DefaultNamespace when empty.
	TargetNamespace string
	// ServiceCIDR and NodePorts are what the plan's Services get their
	// cluster IPs and node ports from, and are checked against as a sync
	// would. When zero: against a cluster, its ServiceCIDR object's CIDR;
	// else servicenet's defaults.
	ServiceCIDR servicenet.CIDR
	NodePorts   servicenet.PortRange
	// Decryption opens the files encrypted with sops; without it their
	// values read as digests of their ciphertexts (sops.Sealed), which is
	// enough to say which keys of a Secret changed.
	Decryption *sops.Keys
	// RequireEncryptedSecrets reports Secrets in plain files as errors, as
	// the sync would.
	RequireEncryptedSecrets bool
}

// serviceRanges are the plan's service CIDR and node port range: the
// options', else the cluster's (cl may be nil), else the defaults.
func (o *PlanOptions) serviceRanges(cl *clusterState) (servicenet.CIDR, servicenet.PortRange, error) {
	cidr, ports := o.ServiceCIDR, o.NodePorts
	if cidr.IsZero() && cl != nil {
		cidr = cl.serviceCIDR()
	}
	var err error
	if cidr.IsZero() {
		if cidr, err = servicenet.ParseCIDR(servicenet.DefaultServiceCIDR); err != nil {
			return cidr, ports, err
		}
	}
	if ports == (servicenet.PortRange{}) {
		ports, err = servicenet.ParsePortRange(servicenet.DefaultNodePortRange)
	}
	return cidr, ports, err
}

func (o *PlanOptions) syncer() *Syncer {
	name := o.Name
	if name == "" {
		name = "default"
	}
	p := strings.Trim(path.Clean("/"+o.Path), "/")
	return &Syncer{Name: name, Schema: o.Schema, Path: p, TargetNamespace: o.TargetNamespace,
		Decryption: o.Decryption, RequireEncryptedSecrets: o.RequireEncryptedSecrets}
}

// PlanRevision names one side of a plan.
type PlanRevision struct {
	// Ref is what was asked for ("main", "pr-12", a hash).
	Ref string `json:"ref,omitempty"`
	// Commit is the full hash of the commit.
	Commit string `json:"commit"`
	// Subject is the first line of the commit message.
	Subject string `json:"subject,omitempty"`
}

// Short returns the commit cut to 12 characters.
func (r PlanRevision) Short() string { return Revision{ID: r.Commit}.Short() }

// Plan is what merging a change would do: per object, created, changed or
// deleted, with a field-level diff and what the cluster would do about it,
// and the risks a reviewer should look at first.
type Plan struct {
	// Base is the revision compared against; nil when comparing against a
	// cluster.
	Base *PlanRevision `json:"base,omitempty"`
	// Head is the revision under review.
	Head PlanRevision `json:"head"`
	// Cluster is the API the head was compared against, if any.
	Cluster string `json:"cluster,omitempty"`
	// Path is the folder of the repository read.
	Path string `json:"path,omitempty"`

	Created   int `json:"created"`
	Changed   int `json:"changed"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
	// UntouchedFiles counts the manifest files that are the same blob in
	// base and head, and UntouchedObjects their documents: they are not
	// decoded or validated, and their objects count in Unchanged.
	UntouchedFiles   int `json:"untouchedFiles,omitempty"`
	UntouchedObjects int `json:"untouchedObjects,omitempty"`

	// Objects are the created, changed and deleted objects, in the order a
	// sync writes them.
	Objects []*PlannedObject `json:"objects"`
	// Risks are what a reviewer should look at first; level "error" ones
	// would be refused.
	Risks []Risk `json:"risks"`
	// Errors are the problems of the head revision, with file:line; a plan
	// with errors would not be applied.
	Errors schema.ErrorList `json:"errors"`
	// Scheduling says whether the new pods fit on the cluster's nodes; only
	// when compared against a cluster.
	Scheduling *Scheduling `json:"scheduling,omitempty"`
	// Autoscaled names the objects of head whose replicas a
	// HorizontalPodAutoscaler of head owns: Git's spec.replicas only sets
	// their first count, and a change of it is not planned.
	Autoscaled []string `json:"autoscaled,omitempty"`
	// Order is the sequence a sync would run the head in, when it has
	// waves or hooks: waves lowest first with their pre-apply hooks, then
	// the post-apply and on-failure hooks (plan_order.go).
	Order []PlanStep `json:"order,omitempty"`
}

// PlannedObject is one object that would change.
type PlannedObject struct {
	// Action is create, update or delete.
	Action    Action `json:"action"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Origin is the manifest's file:line in head; in base for a deletion.
	Origin string `json:"origin,omitempty"`
	// RenderedBy names what rendered the object (a kustomization, a
	// HelmChart, a CUE package) when Origin is not the object as written.
	RenderedBy string `json:"renderedBy,omitempty"`
	// Effects say what the cluster would do: "scale 2 → 5", "rolling update
	// of 3 pods, …".
	Effects []string `json:"effects,omitempty"`
	// Diff is a unified diff of the object as YAML, defaults filled in, from
	// base (or the cluster) to head; empty for a deletion. Secret values
	// are replaced by markers.
	Diff string `json:"diff,omitempty"`
	// SecretKeys lists the keys of a Secret whose values were added,
	// removed or changed; the values themselves never appear.
	SecretKeys *SecretKeys `json:"secretKeys,omitempty"`
	// Encrypted says the object's file in head is encrypted with sops.
	Encrypted bool `json:"encrypted,omitempty"`
	// Wave is the object's wave in head (keelson.dev/wave).
	Wave int `json:"wave,omitempty"`

	key key
}

// Title is "Kind namespace/name".
func (o *PlannedObject) Title() string { return objectTitle(o.Kind, o.Namespace, o.Name) }

func objectTitle(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

// SecretKeys are the keys of a Secret's data whose values changed.
type SecretKeys struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// Unverified keys have values the token may not read, of the same
	// size on both sides: they may or may not have changed.
	Unverified []string `json:"unverified,omitempty"`
}

func (k *SecretKeys) empty() bool {
	return len(k.Added)+len(k.Removed)+len(k.Changed) == 0
}

// RiskLevel says how bad a risk is.
type RiskLevel string

// The risk levels. An error is a change the sync or the cluster would refuse.
const (
	RiskError   RiskLevel = "error"
	RiskWarning RiskLevel = "warning"
)

// Risk is one thing in a plan a reviewer should look at before merging.
type Risk struct {
	Level RiskLevel `json:"level"`
	// Code names the kind of risk: immutable-field, replace, delete,
	// data-loss, scale-to-zero, image-tag, owner-change, plain-secret,
	// kind-not-acted-on, access-gained-sensitive, access-gained,
	// access-lost (Object is then "RBAC", and the message names the user,
	// group or ServiceAccount).
	Code string `json:"code"`
	// Object is "Kind namespace/name".
	Object  string `json:"object"`
	Message string `json:"message"`
}

// HasChanges reports whether anything would be created, changed or deleted.
func (p *Plan) HasChanges() bool { return p.Created+p.Changed+p.Deleted > 0 }

// Invalid reports whether the head is invalid or a change would be refused.
func (p *Plan) Invalid() bool {
	if len(p.Errors) > 0 {
		return true
	}
	for _, r := range p.Risks {
		if r.Level == RiskError {
			return true
		}
	}
	return false
}

// compare plans every object of head against old (base objects, or the
// cluster's), both keyed by object; objects in only old are deletions.
func (p *Plan) compare(old, head map[key]*desired, cl *clusterState) error {
	hooks := takeHooks(head)
	takeHooks(old)
	p.Autoscaled = autoscaledOf(head)
	hc := health.Context{IngressClasses: ingressClassesOf(head, cl)}
	for k, d := range head {
		prev := old[k]
		po, err := planObject(prev, d)
		if err != nil {
			return err
		}
		if po == nil {
			p.Unchanged++
			continue
		}
		p.add(po, prev, d, cl, hc)
	}
	for k, o := range old {
		if head[k] != nil || (cl != nil && o.obj.GetAnnotations()[AnnotationPrune] == "disabled") {
			continue
		}
		po := &PlannedObject{Action: Delete, Kind: o.res.GVK.Kind, Namespace: k.namespace, Name: k.name, Origin: o.origin, key: k}
		p.add(po, o, nil, cl, hc)
	}
	p.Risks = append(p.Risks, accessRisks(old, head, p.Objects)...)
	p.sort()
	p.Order = planOrder(p.Objects, hooks, head)
	return nil
}

func (p *Plan) add(po *PlannedObject, old, head *desired, cl *clusterState, hc health.Context) {
	switch po.Action {
	case Create:
		p.Created++
	case Update:
		p.Changed++
	case Delete:
		p.Deleted++
	}
	var o, n store.Object
	if old != nil {
		o = old.obj
	}
	if head != nil {
		n = head.obj
		po.Encrypted = head.encrypted
	}
	po.Effects = effects(o, n, cl)
	p.Risks = append(p.Risks, risks(po, o, n, cl)...)
	if head != nil {
		p.Risks = append(p.Risks, kindRisks(po, head.res, head.obj, hc)...)
	}
	p.Objects = append(p.Objects, po)
}

// planObject compares one object in old (nil when absent) and head; nil
// when they are the same.
func planObject(old, head *desired) (*PlannedObject, error) {
	po := &PlannedObject{Kind: head.res.GVK.Kind, Namespace: head.key.namespace, Name: head.key.name, Origin: head.origin, RenderedBy: head.renderedBy(),
		Wave: head.wave, key: head.key}
	var o store.Object
	if old == nil {
		po.Action = Create
	} else {
		po.Action = Update
		o = old.obj
		keepOthersFields(head.obj, o)
		if head.replicasOwner != "" {
			keepReplicas(head.obj, o)
		}
	}
	a, b, keys, err := renderPair(o, head.obj)
	if err != nil {
		return nil, err
	}
	if old != nil && bytes.Equal(a, b) {
		return nil, nil
	}
	if keys != nil && (po.Action == Create || !keys.empty() || len(keys.Unverified) > 0) {
		po.SecretKeys = keys
	}
	po.Diff = unifiedDiff(a, b)
	return po, nil
}

// sort puts objects in the order a sync writes them (by wave, and kind
// within a wave, deletions last), and risks errors first, then by object.
func (p *Plan) sort() {
	order := func(o *PlannedObject) (int, int) {
		n := kindOrder(o.Kind)
		if o.Action == Delete {
			return 1, 100 - n
		}
		return 0, o.Wave*100 + n
	}
	slices.SortFunc(p.Objects, func(a, b *PlannedObject) int {
		ga, oa := order(a)
		gb, ob := order(b)
		return cmp.Or(cmp.Compare(ga, gb), cmp.Compare(oa, ob), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	level := func(r Risk) int {
		if r.Level == RiskError {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(p.Risks, func(a, b Risk) int {
		return cmp.Or(cmp.Compare(level(a), level(b)), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Message, b.Message))
	})
	p.Errors.Sort()
}
