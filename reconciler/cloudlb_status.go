package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// cleanup deletes the load balancer of a service being deleted, or no
// longer of type LoadBalancer (or given a loadBalancerClass), then clears
// what the controller wrote and drops its finalizer. A service the
// controller never served (neither finalizer nor condition) is left alone.
func (c *cloudLBController) cleanup(ctx context.Context, svc *corev1.Service) error {
	key := svc.Namespace + "/" + svc.Name
	if !lbServed(svc) && c.get(key) == nil {
		return nil
	}
	if c.lb != nil && (slices.Contains(svc.Finalizers, cloud.LoadBalancerCleanupFinalizer) || c.get(key) != nil) {
		if err := c.deleteLB(ctx, svc); err != nil {
			return c.failed(ctx, svc, eventSyncLBFailed, "Error syncing load balancer", err)
		}
	}
	c.forget(key)
	_, err := c.write(ctx, svc, func(s *corev1.Service) bool {
		if !lbServed(s) {
			return false
		}
		s.Finalizers = slices.DeleteFunc(s.Finalizers, func(f string) bool { return f == cloud.LoadBalancerCleanupFinalizer })
		s.Status.LoadBalancer = corev1.LoadBalancerStatus{}
		meta.RemoveStatusCondition(&s.Status.Conditions, servicenet.ConditionLoadBalancer)
		return true
	})
	return err
}

// lbServed reports whether the controller has written to the service: its
// finalizer or its condition.
func lbServed(s *corev1.Service) bool {
	return slices.Contains(s.Finalizers, cloud.LoadBalancerCleanupFinalizer) ||
		meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer) != nil
}

func (c *cloudLBController) deleteLB(ctx context.Context, svc *corev1.Service) error {
	c.rec.Eventf(svc, corev1.EventTypeNormal, eventDeletingLB, "Deleting load balancer")
	if err := c.lb.EnsureLoadBalancerDeleted(ctx, svc); err != nil {
		return fmt.Errorf("delete load balancer: %w", err)
	}
	c.rec.Eventf(svc, corev1.EventTypeNormal, eventDeletedLB, "Deleted load balancer")
	c.wakeFailed(svc)
	return nil
}

// wakeFailed queues at once the other LoadBalancer services whose last
// attempt failed: what the deleted load balancer held (an address of the
// pool, a port of the nodes) may be what they wait for, and their back-off
// may have grown to minutes.
func (c *cloudLBController) wakeFailed(deleted *corev1.Service) {
	for _, s := range cachedList[*corev1.Service](c.services) {
		if s.UID == deleted.UID || s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if cond := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer); cond != nil &&
			cond.Status == metav1.ConditionFalse && cond.Reason == servicenet.ReasonLoadBalancerFailed {
			c.Enqueue(s.Namespace + "/" + s.Name)
		}
	}
}

// vanished deletes the load balancer of a service deleted without its
// finalizer being honoured (a forced delete), as last ensured.
func (c *cloudLBController) vanished(ctx context.Context, key string) error {
	a := c.get(key)
	if a == nil || c.lb == nil {
		return nil
	}
	if err := c.deleteLB(ctx, a.svc); err != nil {
		c.rec.Eventf(a.svc, corev1.EventTypeWarning, eventSyncLBFailed, "Error syncing load balancer: %v", err)
		return fmt.Errorf("service %s: %w", key, err)
	}
	c.forget(key)
	return nil
}

// noProvider tells a LoadBalancer service that nothing gives it an address,
// with one Warning event when the condition is first set.
func (c *cloudLBController) noProvider(ctx context.Context, svc *corev1.Service) error {
	msg := fmt.Sprintf("the control plane runs with --cloud-provider %s, which makes no load balancers: nothing gives this service an external address; "+
		"run keelson server with --cloud-provider local (and --lb-pool for an address pool), or reach the service on its node ports", c.provider)
	first := false // not only a new generation
	_, err := c.write(ctx, svc, func(s *corev1.Service) bool {
		old := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer)
		first = old == nil || old.Reason != servicenet.ReasonNoCloudProvider || old.Message != msg
		return setLBCondition(s, metav1.ConditionFalse, servicenet.ReasonNoCloudProvider, msg)
	})
	if err == nil && first {
		c.rec.Eventf(svc, corev1.EventTypeWarning, servicenet.ReasonNoCloudProvider, "%s", msg)
	}
	return err
}

// failed records a provider's failure: a Warning event, the condition False
// with the error; the error is returned for the queue to retry with
// back-off.
func (c *cloudLBController) failed(ctx context.Context, svc *corev1.Service, reason, what string, err error) error {
	c.rec.Eventf(svc, corev1.EventTypeWarning, reason, "%s: %v", what, err)
	_, werr := c.write(ctx, svc, func(s *corev1.Service) bool {
		return setLBCondition(s, metav1.ConditionFalse, servicenet.ReasonLoadBalancerFailed, err.Error())
	})
	return errors.Join(fmt.Errorf("service %s/%s: %s: %w", svc.Namespace, svc.Name, strings.ToLower(what[:1])+what[1:], err), werr)
}

// ready writes the load balancer's status and the condition True, when
// they differ from the service's.
func (c *cloudLBController) ready(ctx context.Context, svc *corev1.Service, st *corev1.LoadBalancerStatus) error {
	_, err := c.write(ctx, svc, func(s *corev1.Service) bool {
		changed := false
		if !equality.Semantic.DeepEqual(s.Status.LoadBalancer, *st) {
			s.Status.LoadBalancer = *st.DeepCopy()
			changed = true
		}
		return setLBCondition(s, metav1.ConditionTrue, servicenet.ReasonLoadBalancerReady, readyMessage(st)) || changed
	})
	return err
}

func readyMessage(st *corev1.LoadBalancerStatus) string {
	var at []string
	for _, in := range st.Ingress {
		if in.IP != "" {
			at = append(at, in.IP)
		} else if in.Hostname != "" {
			at = append(at, in.Hostname)
		}
	}
	if len(at) == 0 {
		return "load balancer made; the provider gave it no address"
	}
	return "load balancer at " + strings.Join(at, ", ")
}

// setLBCondition sets the controller's condition on s, for s's generation,
// and reports whether anything of it changed.
func setLBCondition(s *corev1.Service, status metav1.ConditionStatus, reason, msg string) bool {
	old := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer)
	if old != nil && old.Status == status && old.Reason == reason && old.Message == msg && old.ObservedGeneration == s.Generation {
		return false
	}
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: servicenet.ConditionLoadBalancer, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
	return true
}

// write applies mutate to the service and writes it when mutate reports a
// change, compare-and-swap; on a conflict with another writer it applies
// mutate again to a fresh read. It returns the service as written (or as
// it is, unchanged), nil when it is gone or was replaced by another of the
// same name.
func (c *cloudLBController) write(ctx context.Context, svc *corev1.Service, mutate func(*corev1.Service) bool) (*corev1.Service, error) {
	cur := svc.DeepCopy()
	for attempt := 0; ; attempt++ {
		if !mutate(cur) {
			return cur, nil
		}
		err := c.st.Update(ctx, cur)
		switch {
		case err == nil:
			return cur, nil
		case errors.Is(err, store.ErrNotFound):
			return nil, nil
		case !errors.Is(err, store.ErrConflict) || attempt == 5:
			return nil, fmt.Errorf("service %s/%s: write load balancer status: %w", svc.Namespace, svc.Name, err)
		}
		cur = &corev1.Service{}
		if err := c.st.Get(ctx, svc.Namespace, svc.Name, cur); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			return nil, fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		if cur.UID != svc.UID {
			return nil, nil // its own events queue the new one
		}
	}
}
