package cloud_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/reconciler/cloud/local"
)

// registerLocal registers local once, as a program does by hand: no
// package registers itself.
var registerLocal = sync.OnceFunc(func() {
	if got := cloud.Names(); !slices.Equal(got, []string{"none"}) {
		panic(fmt.Sprintf("Names() = %v before any registration, want only none", got))
	}
	cloud.Register(local.Name, local.New)
})

func TestCloudRegistry(t *testing.T) {
	registerLocal()
	if got := cloud.Names(); !slices.Equal(got, []string{"local", "none"}) {
		t.Errorf("Names() = %v, want local and none", got)
	}
	p, err := cloud.New(cloud.NoneName, cloud.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, lb := p.LoadBalancer()
	_, inst := p.Instances()
	_, routes := p.Routes()
	if p.Name() != "none" || lb || inst || routes {
		t.Errorf("none: name %q, load balancers %v, instances %v, routes %v; want nothing", p.Name(), lb, inst, routes)
	}
	if p, err := cloud.New(local.Name, cloud.Config{LBPool: []string{"10.99.0.0/24"}}); err != nil || p.Name() != "local" {
		t.Errorf("local: %v %v", p, err)
	}
	_, err = cloud.New("aws", cloud.Config{})
	if !errors.Is(err, cloud.ErrUnknownProvider) || !strings.Contains(err.Error(), `"aws"`) || !strings.Contains(err.Error(), "local, none") {
		t.Errorf("unknown provider: %v, want ErrUnknownProvider naming it and listing local, none", err)
	}
	_, err = cloud.New(local.Name, cloud.Config{LBPool: []string{"lots"}})
	if err == nil || !strings.Contains(err.Error(), `cloud provider local: load balancer pool entry "lots"`) {
		t.Errorf("bad pool: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering none twice did not panic")
		}
	}()
	cloud.Register(cloud.NoneName, func(cloud.Config) (cloud.Interface, error) { return nil, nil })
}
