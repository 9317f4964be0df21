package reconciler

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/keelson/keelson/store"
)

// repairAddress deletes one reservation keelson made when its Service does
// not exist or holds another address: what a crash between a service's
// deletion and the release of its address leaves behind. Reservations of
// other managers are never touched.
//
// The service is read from the store before anything is deleted, never
// judged from the cache alone: another allocator may have made the
// reservation and the service together a moment ago.
func (c *ServiceIPController) repairAddress(ctx context.Context, name string) (Result, error) {
	ip, ok := GetCached[*networkingv1.IPAddress](c.addresses, "", name)
	if !ok || !managedByKeelson(ip) {
		return Result{}, nil
	}
	key := parentService(ip)
	if key != "" {
		ns, svcName := ip.Spec.ParentRef.Namespace, ip.Spec.ParentRef.Name
		if s, ok := GetCached[*corev1.Service](c.services, ns, svcName); ok && s.Spec.ClusterIP == name {
			return Result{}, nil
		}
		s := &corev1.Service{}
		switch err := c.st.Get(ctx, ns, svcName, s); {
		case err == nil && s.Spec.ClusterIP == name:
			return Result{}, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return Result{}, fmt.Errorf("repair %s: service %s: %w", name, key, err)
		}
	}
	if err := c.deleteAddress(ctx, ip); err != nil {
		return Result{}, fmt.Errorf("repair %s: delete orphaned reservation of %s: %w", name, holderName(ip), err)
	}
	c.log.Info("deleted a cluster IP reservation whose service is gone or holds another address",
		"address", name, "parent", holderName(ip))
	if key != "" {
		// Its service looks again: should it have taken the address back at
		// this very moment, it makes a new reservation.
		c.Enqueue(key)
	}
	return Result{}, nil
}
