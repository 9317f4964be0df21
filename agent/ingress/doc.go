// Package ingress is keelson's ingress proxy: the HTTP reverse proxy each
// node agent runs for the cluster's networking.k8s.io/v1 Ingresses, as
// ingress controllers do in Kubernetes. It serves the Ingresses
// ingressclass.Served accepts (no class, keelson's, or a class whose
// controller is keelson's) and sends each request to a ready endpoint of
// the backend's Service, read from its EndpointSlices: pod to pod, not
// through the service's cluster IP.
//
// Informer events rebuild an immutable routing table (bursts coalesced),
// swapped in atomically; requests read it without locks:
//
//	exact host → rules of that host, merged from every Ingress
//	*.example.com → rules of the wildcard (one more DNS label)
//	no host → rules for every host, tried after the host's own
//	spec.defaultBackend of the oldest Ingress with one, else 404
//
// Within a host the longest matching path wins: Exact matches the whole
// path and beats a Prefix of the same path; Prefix (and
// ImplementationSpecific) matches whole path elements, so "/foo" matches
// "/foo" and "/foo/bar" but not "/foobar". When two Ingresses claim the same
// host, path and type, the older one (creationTimestamp, then namespace and
// name) serves it and the younger one gets a Warning Event.
//
// Requests to a backend go round robin over its endpoints through a shared
// pool of keep-alive connections; an endpoint that cannot be connected to is
// skipped for the next (at most 3 tries), since nothing was sent yet. A
// backend whose Service or port does not exist, or that has no ready
// endpoint, answers 503. Backends get the client's Host and
// X-Forwarded-For/-Host/-Proto; upgrades (WebSockets) pass through. Clients
// speak HTTP/1.1 or HTTP/2: by ALPN on HTTPS, with prior knowledge (h2c) on
// plain HTTP. Endpoints get HTTP/1.1, or h2c when the service port's
// appProtocol is kubernetes.io/h2c.
//
// HTTPS picks a certificate by the client's server name from the Ingresses'
// spec.tls (exact host, then wildcard); a Secret's certificate is parsed
// once per change of the Secret. Hosts whose Secret is missing or unusable,
// and clients that name no host, get a self-signed certificate the proxy
// makes when it is created. Problems with an Ingress are logged and told
// once as Warning Events; the rest of the Ingress is served.
//
// Usage, in the agent:
//
//	p, err := ingress.New(ingress.Config{
//		Ingresses:      factory.Networking().V1().Ingresses().Informer(),
//		IngressClasses: factory.Networking().V1().IngressClasses().Informer(),
//		Services:       factory.Core().V1().Services().Informer(),
//		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
//		Secrets:        factory.Core().V1().Secrets().Informer(),
//		HTTPAddr:       ":80",
//		HTTPSAddr:      ":443",
//		Event:          recordEvent,
//		Logger:         log,
//	})
//	if err != nil {
//		return err
//	}
//	factory.Start(ctx.Done())
//	go func() {
//		if err := p.Run(ctx); err != nil { // a port taken, at once
//			log.Error("ingress proxy", "err", err)
//		}
//	}()
//	<-p.Ready() // listening, with a table built from synced informers
package ingress
