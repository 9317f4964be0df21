package gitsync

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// Cluster is what a plan reads of a running cluster, through its read-only
// API; the command implements it with client-go.
type Cluster interface {
	// List returns every object of resource r, in every namespace. Errors
	// are the API's.
	List(ctx context.Context, r store.Resource) ([]store.Object, error)
	// String names the cluster (its URL) in the plan.
	String() string
}

// skipped are resources a plan does not read: they are never in Git and
// say nothing about what a change would do.
var planSkipped = map[string]bool{"events": true, "leases.coordination.k8s.io": true, "controllerrevisions.apps": true,
	"endpoints": true, "endpointslices.discovery.k8s.io": true}

// clusterState is what a plan knows of the cluster besides the objects it
// compares.
type clusterState struct {
	objects     map[key]*desired // every object read, by key
	inNamespace map[string]int   // namespace → number of objects in it
	nodes       []*corev1.Node
	pods        []*corev1.Pod
	crds        []*apiextensionsv1.CustomResourceDefinition
}

func readCluster(ctx context.Context, cl Cluster) (*clusterState, error) {
	st := &clusterState{objects: map[key]*desired{}, inNamespace: map[string]int{}}
	if err := st.read(ctx, cl, store.Resources()); err != nil {
		return nil, err
	}
	// The cluster's custom kinds are known from its CRDs, read above.
	var custom []store.Resource
	for _, crd := range st.crds {
		if r, err := store.CustomResourceOf(crd); err == nil {
			custom = append(custom, r)
		}
	}
	if err := st.read(ctx, cl, custom); err != nil {
		return nil, err
	}
	return st, nil
}

// read lists the objects of resources rs from cl into st.
func (st *clusterState) read(ctx context.Context, cl Cluster, rs []store.Resource) error {
	for _, r := range rs {
		if planSkipped[r.GroupResource()] {
			continue
		}
		items, err := cl.List(ctx, r)
		if err != nil {
			return fmt.Errorf("list %s from %s: %w", r.GroupResource(), cl, err)
		}
		for _, o := range items {
			k := key{r.GroupResource(), o.GetNamespace(), o.GetName()}
			st.objects[k] = &desired{key: k, res: r, obj: o, origin: o.GetAnnotations()[AnnotationOrigin]}
			if o.GetNamespace() != "" {
				st.inNamespace[o.GetNamespace()]++
			}
			switch v := o.(type) {
			case *corev1.Node:
				st.nodes = append(st.nodes, v)
			case *corev1.Pod:
				st.pods = append(st.pods, v)
			case *apiextensionsv1.CustomResourceDefinition:
				st.crds = append(st.crds, v)
			}
		}
	}
	return nil
}

// current returns what head is compared with: the objects of sync name,
// and those of head that exist without being the sync's; taking over one
// another sync owns or a controller made is refused, so it is an error.
func (st *clusterState) current(name string, head map[key]*desired) (map[key]*desired, []Risk) {
	old := map[key]*desired{}
	for k, o := range st.objects {
		if o.obj.GetLabels()[LabelSource] == name {
			old[k] = o
		}
	}
	var risks []Risk
	for k, d := range head {
		cur := st.objects[k]
		if cur == nil || old[k] != nil {
			continue
		}
		title := objectTitle(d.res.GVK.Kind, k.namespace, k.name)
		if other := cur.obj.GetLabels()[LabelSource]; other != "" {
			risks = append(risks, Risk{Level: RiskError, Code: "owner-change", Object: title,
				Message: fmt.Sprintf("owned by sync %q (from its file %s): this sync would take it over, which the sync refuses; remove it from one of the two", other, cur.origin)})
		} else if refs := cur.obj.GetOwnerReferences(); len(refs) > 0 {
			risks = append(risks, Risk{Level: RiskError, Code: "owner-change", Object: title,
				Message: fmt.Sprintf("made and managed by %s %s: the sync refuses to take it over; give the object from Git another name", refs[0].Kind, refs[0].Name)})
		} else if _, ok := cur.obj.GetLabels()[keelsonv1alpha1.LabelControlPlane]; ok {
			risks = append(risks, Risk{Level: RiskError, Code: "owner-change", Object: title,
				Message: "made by keelson's control plane: the sync refuses to take it over; remove it from the manifests"})
		}
		old[k] = cur // compared as an update, adopted or not
	}
	return old, risks
}

// PlanCluster plans what applying head would do to the cluster as it is
// now: every object of head is validated and compared with the cluster's,
// objects of this sync that left Git are deletions, and the new pods are
// fitted onto the nodes' free resources.
//
// Errors: ErrFetch (the repository or ref), the cluster's errors, ctx.Err().
// Problems of head are in Plan.Errors, not in the error.
func PlanCluster(ctx context.Context, repoPath, headRef string, cl Cluster, opts PlanOptions) (*Plan, error) {
	s := opts.syncer()
	src := NewLocalGit(repoPath, headRef)
	rev, err := src.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	fsys, err := src.Files(ctx, rev)
	if err != nil {
		return nil, err
	}
	st, err := readCluster(ctx, cl)
	if err != nil {
		return nil, err
	}
	// Custom resources of head are checked against the cluster's CRDs too,
	// as a sync checks them against the store's.
	head, problems, err := s.loadPlanSide(ctx, fsys, rev, schema.WithCustomResources(st.crds...))
	if err != nil {
		return nil, err
	}
	subject, _, _ := strings.Cut(rev.Message, "\n")
	p := &Plan{Head: PlanRevision{Ref: headRef, Commit: rev.ID, Subject: subject}, Cluster: cl.String(), Path: s.Path,
		Objects: []*PlannedObject{}, Risks: []Risk{}, Errors: append(schema.ErrorList{}, problems...)}
	old, risks := st.current(s.Name, head)
	p.Risks = append(p.Risks, risks...)
	if len(head) == 0 && len(p.Errors) == 0 && len(old) > 0 {
		p.Errors = append(p.Errors, emptyHead(s.pathOrRoot()))
	}
	if err := p.compare(old, head, st); err != nil {
		return nil, err
	}
	cidr, ports, err := opts.serviceRanges(st)
	if err != nil {
		return nil, err
	}
	if err := p.addServices(ctx, &serviceScope{cidr: cidr, ports: ports, old: old, head: head, cl: st, fsys: fsys}); err != nil {
		return nil, err
	}
	for _, o := range p.Objects {
		if cur := st.objects[o.key]; o.Action == Update && cur != nil && cur.obj.GetLabels()[LabelSource] == "" && len(cur.obj.GetOwnerReferences()) == 0 {
			o.Effects = append([]string{"adopted: made outside Git, from now on kept by this sync"}, o.Effects...)
		}
	}
	p.Scheduling = st.fit(p, old, head)
	// A revision that breaks a quota would be refused by the sync.
	ours := make(map[key]store.Object, len(old))
	for k, d := range old {
		if d.obj.GetLabels()[LabelSource] == s.Name {
			ours[k] = d.obj
		}
	}
	breaches, err := checkQuotas(head, ours, st.quotaWorld())
	if err != nil {
		return nil, err
	}
	p.Errors = append(p.Errors, quotaErrors(breaches)...)
	return p, nil
}

// quotaWorld is the cluster as the quota check reads it.
func (st *clusterState) quotaWorld() quotaWorld {
	idx := map[[2]string][]store.Object{}
	for k, d := range st.objects {
		if k.namespace != "" {
			idx[[2]string{k.res, k.namespace}] = append(idx[[2]string{k.res, k.namespace}], d.obj)
		}
	}
	return quotaWorld{
		list:  func(kind, ns string) ([]store.Object, error) { return idx[[2]string{kind, ns}], nil },
		nodes: func() ([]*corev1.Node, error) { return st.nodes, nil },
	}
}
