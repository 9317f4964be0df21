package clusterdns

import (
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// watch registers the index's handlers on the informers and returns a
// function that reports whether both have delivered their initial lists.
func (ix *index) watch(services, endpointSlices cache.SharedIndexInformer, log *slog.Logger) (func() bool, error) {
	onService := func(obj any) {
		if s, ok := obj.(*corev1.Service); ok {
			ix.setService(svcKey{strings.ToLower(s.Namespace), strings.ToLower(s.Name)}, serviceFrom(s))
		} else {
			log.Warn("unexpected object in the services informer", "type", fmt.Sprintf("%T", obj))
		}
	}
	svcReg, err := services.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onService,
		UpdateFunc: func(_, obj any) { onService(obj) },
		DeleteFunc: func(obj any) {
			if ns, name, ok := deletedKey(obj); ok {
				ix.setService(svcKey{ns, name}, nil)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch services: %w", err)
	}
	onSlice := func(obj any) {
		if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
			ix.setSlice(svcKey{strings.ToLower(es.Namespace), strings.ToLower(es.Name)}, sliceFrom(es))
		} else {
			log.Warn("unexpected object in the EndpointSlices informer", "type", fmt.Sprintf("%T", obj))
		}
	}
	sliceReg, err := endpointSlices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onSlice,
		UpdateFunc: func(_, obj any) { onSlice(obj) },
		DeleteFunc: func(obj any) {
			if ns, name, ok := deletedKey(obj); ok {
				ix.setSlice(svcKey{ns, name}, nil)
			}
		},
	})
	if err != nil {
		_ = services.RemoveEventHandler(svcReg)
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	return func() bool { return svcReg.HasSynced() && sliceReg.HasSynced() }, nil
}

// deletedKey is the namespace and name of a deleted object, which may come
// as a tombstone when the informer missed the deletion itself.
func deletedKey(obj any) (ns, name string, ok bool) {
	if t, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
		ns, name, err := cache.SplitMetaNamespaceKey(t.Key)
		return strings.ToLower(ns), strings.ToLower(name), err == nil
	}
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return "", "", false
	}
	ns, name, err = cache.SplitMetaNamespaceKey(key)
	return strings.ToLower(ns), strings.ToLower(name), err == nil
}
