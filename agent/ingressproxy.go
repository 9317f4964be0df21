package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/keelson/keelson/agent/ingress"
	"github.com/keelson/keelson/internal/ingressclass"
)

// ingressListens is the value of the Node's ingressclass.AnnotationNodeProxy
// while the ingress proxy listens, "" when it does not run.
func (a *Agent) ingressListens() string {
	var where []string
	if a.cfg.IngressHTTP != "" {
		where = append(where, "http="+a.cfg.IngressHTTP)
	}
	if a.cfg.IngressHTTPS != "" {
		where = append(where, "https="+a.cfg.IngressHTTPS)
	}
	return strings.Join(where, ",")
}

// startIngress runs the ingress proxy until ctx ends, in a goroutine of wg,
// when it listens anywhere. A proxy that cannot listen (the port taken)
// is told in the log and an Event on the Node, and the Node stops saying
// that it serves Ingresses, so that their status no longer names it.
func (a *Agent) startIngress(ctx context.Context, wg *sync.WaitGroup) error {
	if a.ingressListens() == "" {
		return nil
	}
	p, err := ingress.New(ingress.Config{
		Ingresses:      a.cluster.Networking().V1().Ingresses().Informer(),
		IngressClasses: a.cluster.Networking().V1().IngressClasses().Informer(),
		Services:       a.cluster.Core().V1().Services().Informer(),
		EndpointSlices: a.cluster.Discovery().V1().EndpointSlices().Informer(),
		Secrets:        a.cluster.Core().V1().Secrets().Informer(),
		HTTPAddr:       a.cfg.IngressHTTP,
		HTTPSAddr:      a.cfg.IngressHTTPS,
		Event:          a.Event,
		Logger:         a.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("ingress proxy: %w", err)
	}
	wg.Go(func() {
		err := p.Run(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.log.Error("ingress proxy stopped", "err", err)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
		a.Event(node, corev1.EventTypeWarning, "IngressProxyFailed", err.Error())
		if err := a.withdrawIngress(ctx); err != nil {
			a.log.Error("ingress proxy: the node still says it serves Ingresses", "err", err)
		}
	})
	return nil
}

// withdrawIngress takes the annotation that says the ingress proxy listens
// off the Node.
func (a *Agent) withdrawIngress(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := n.Annotations[ingressclass.AnnotationNodeProxy]; !ok {
			return nil
		}
		delete(n.Annotations, ingressclass.AnnotationNodeProxy)
		_, err = a.cfg.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}
