package clusterdns_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/clusterdns"
)

// Serve cluster DNS from informers over a clientset, forwarding other names
// to the resolvers of /etc/resolv.conf, and ask it for a service.
func ExampleServer() {
	run := func(ctx context.Context, client kubernetes.Interface) error {
		factory := informers.NewSharedInformerFactory(client, 0)
		srv, err := clusterdns.New(clusterdns.Config{
			Services:       factory.Core().V1().Services().Informer(),
			EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
			Addr:           "127.0.0.1:10053",
			Logger:         slog.Default(),
		})
		if err != nil {
			return err
		}
		if err := srv.Listen(); err != nil {
			return err
		}
		factory.Start(ctx.Done())
		go func() {
			q := new(dns.Msg)
			q.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
			c := &dns.Client{Timeout: time.Second}
			if r, _, err := c.Exchange(q, srv.Addr().String()); err == nil {
				fmt.Println(r.Answer)
			}
		}()
		return srv.Serve(ctx)
	}
	_ = run
}
