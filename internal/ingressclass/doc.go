// Package ingressclass says which Ingresses keelson's ingress proxy serves,
// so that the proxy in each agent, the controller that fills their status
// and the health rules agree.
//
// keelson's class is the IngressClass "keelson" (spec.controller
// keelson.dev/ingress), the cluster's default class. An Ingress is keelson's
// when it names that class (spec.ingressClassName, or the older annotation
// kubernetes.io/ingress.class), when it names an IngressClass of keelson's
// controller, or when it names no class while keelson's is the default:
//
//	if ingressclass.Served(ing, ingressclass.FromStore(classes.GetStore())) {
//		// route it
//	}
package ingressclass
