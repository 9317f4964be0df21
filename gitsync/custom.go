package gitsync

import (
	"context"
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kschema "github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// registerTreeCRDs registers the resources of the CRDs among objs and
// returns the problems and the names of the CRDs. A plan, which reads trees
// and no store, keys the custom resources of a tree by them too.
func registerTreeCRDs(objs []*kschema.Object) (kschema.ErrorList, map[string]bool) {
	var problems kschema.ErrorList
	names := map[string]bool{}
	for _, o := range objs {
		crd, ok := o.Object.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			continue
		}
		names[strings.ToLower(crd.Name)] = true
		if err := store.RegisterCustom(crd); err != nil {
			problems = append(problems, errAt(o, err.Error()))
		}
	}
	return problems, names
}

// clusterCRDs returns the CustomResourceDefinitions in the store, after
// bringing the process's registry of custom resources in step with them: a
// revision that adds only custom resources of a CRD applied earlier
// validates against it, and a CRD registered for a revision that was never
// applied is forgotten. The CRDs are those read from etcd, not the
// registry's, which may hold a CRD another sync is about to write.
func (s *Syncer) clusterCRDs(ctx context.Context) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := s.Store.LoadCustomResources(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrApply, err)
	}
	return crds, nil
}

// registerCustom registers the resources of the revision's CRDs, so that its
// custom resources can be keyed and written in the same transaction as their
// CRD, and refuses a revision that prunes a CRD of this sync while objects
// of its kind stay in Git.
func (s *Syncer) registerCustom(ctx context.Context, objs []*kschema.Object) (kschema.ErrorList, error) {
	problems, inGit := registerTreeCRDs(objs)
	if !s.Prune {
		return problems, nil
	}
	more, err := s.othersOfPruned(ctx, inGit)
	if err != nil {
		return nil, err
	}
	problems = append(problems, more...)
	for _, o := range objs {
		if _, ok := o.Object.(*apiextensionsv1.CustomResourceDefinition); ok || !strings.Contains(o.APIVersion, ".") {
			continue
		}
		gv, _ := schema.ParseGroupVersion(o.APIVersion)
		r, err := store.ResourceFor(gv.WithKind(o.Kind))
		if err != nil || inGit[r.GroupResource()] {
			continue
		}
		crd, ok := store.CustomDefinition(r)
		if ok && crd.Labels[LabelSource] == s.Name {
			problems = append(problems, errAt(o, fmt.Sprintf(
				"CustomResourceDefinition %s (from %s) is no longer in Git and would be deleted, but this %s of it stays: remove both, or keep the CRD",
				crd.Name, crd.Annotations[AnnotationOrigin], o.Kind)))
		}
	}
	return problems, nil
}

// maxOthersNamed bounds the objects a refusal names.
const maxOthersNamed = 3

// othersOfPruned refuses to prune a CRD of this sync while objects of its
// kind that this sync does not own are stored: Kubernetes deletes them with
// their CRD, and keelson would leave them in etcd with nothing to read them.
func (s *Syncer) othersOfPruned(ctx context.Context, inGit map[string]bool) (kschema.ErrorList, error) {
	var problems kschema.ErrorList
	for _, r := range store.CustomResources() {
		crd, ok := store.CustomDefinition(r)
		if !ok || inGit[r.GroupResource()] || crd.Labels[LabelSource] != s.Name {
			continue
		}
		l, err := s.Store.List(ctx, r, store.ListOptions{Shared: true})
		if err != nil {
			return nil, fmt.Errorf("%w: list %s: %v", ErrApply, r, err)
		}
		var others []string
		for _, o := range l.Items {
			if o.GetLabels()[LabelSource] != s.Name {
				others = append(others, objectTitle(r.GVK.Kind, o.GetNamespace(), o.GetName())+ownerOf(o))
			}
		}
		if len(others) == 0 {
			continue
		}
		named := strings.Join(others[:min(len(others), maxOthersNamed)], ", ")
		if len(others) > maxOthersNamed {
			named += fmt.Sprintf(" and %d more", len(others)-maxOthersNamed)
		}
		file, _, _ := strings.Cut(crd.Annotations[AnnotationOrigin], ":")
		problems = append(problems, &kschema.Error{File: file, Kind: kschema.CRDKind, Name: crd.Name, Msg: fmt.Sprintf(
			"is no longer in Git and would be deleted, but %d objects of it that this sync does not own stay in the cluster (%s): remove them first, or keep the CRD",
			len(others), named)})
	}
	return problems, nil
}

func ownerOf(o store.Object) string {
	if src := o.GetLabels()[LabelSource]; src != "" {
		return " of sync " + src
	}
	return ""
}
