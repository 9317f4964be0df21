package apiserver_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

func epAddrs(ips ...string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, len(ips))
	for i, ip := range ips {
		out[i] = corev1.EndpointAddress{IP: ip}
	}
	return out
}

func sliceEPs(ips ...string) []discoveryv1.Endpoint {
	out := make([]discoveryv1.Endpoint, len(ips))
	for i, ip := range ips {
		out[i] = discoveryv1.Endpoint{Addresses: []string{ip}}
	}
	return out
}

func slicePort(name string, port int32) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{}
	if name != "" {
		p.Name = ptr.To(name)
	}
	if port != 0 {
		p.Port = ptr.To(port)
	}
	return p
}

// Endpoints and EndpointSlices print as kubectl prints them: at most three
// addresses or ports, then how many more.
func TestTableOfEndpointsAndSlices(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "default", Name: name} }
	objs := []store.Object{
		&corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
			Addresses: epAddrs("10.42.0.5", "10.42.0.6", "10.42.0.7", "10.42.0.8"), NotReadyAddresses: epAddrs("10.42.0.99"),
			Ports: []corev1.EndpointPort{{Port: 80}}}}},
		&corev1.Endpoints{ObjectMeta: meta("two-ports"), Subsets: []corev1.EndpointSubset{{
			Addresses: epAddrs("10.42.0.5"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}}},
		&corev1.Endpoints{ObjectMeta: meta("headless"), Subsets: []corev1.EndpointSubset{{Addresses: epAddrs("10.42.0.9")}}},
		&corev1.Endpoints{ObjectMeta: meta("empty")},
		&discoveryv1.EndpointSlice{ObjectMeta: meta("web-x7k2p"), AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{slicePort("http", 80), slicePort("https", 443)}, Endpoints: sliceEPs("10.42.0.5", "10.42.0.6")},
		&discoveryv1.EndpointSlice{ObjectMeta: meta("many"), AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{slicePort("", 80), slicePort("metrics", 0), slicePort("", 0), slicePort("a", 1), slicePort("b", 2)},
			Endpoints: sliceEPs("10.42.0.1", "10.42.0.2", "10.42.0.3", "10.42.0.4", "10.42.0.5")},
		&discoveryv1.EndpointSlice{ObjectMeta: meta("placeholder"), AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{}},
	}
	for _, o := range objs {
		if err := ts.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cs := ts.client(t, "admin-token")
	const eps, sliceBase = "/api/v1/namespaces/default/endpoints/", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/"
	epCols, sliceCols := []string{"Name", "Endpoints", "Age"}, []string{"Name", "AddressType", "Ports", "Endpoints", "Age"}
	cases := []struct {
		name    string
		path    string
		columns []string
		cells   []string
	}{
		{"endpoints past three", eps + "web", epCols, []string{"web", "10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 1 more..."}},
		{"endpoints with two ports", eps + "two-ports", epCols, []string{"two-ports", "10.42.0.5:80,10.42.0.5:443"}},
		{"endpoints without ports", eps + "headless", epCols, []string{"headless", "10.42.0.9"}},
		{"endpoints without subsets", eps + "empty", epCols, []string{"empty", "<none>"}},
		{"slice", sliceBase + "web-x7k2p", sliceCols, []string{"web-x7k2p", "IPv4", "80,443", "10.42.0.5,10.42.0.6"}},
		{"slice past three", sliceBase + "many", sliceCols, []string{"many", "IPv4", "80,metrics,* + 2 more...", "10.42.0.1,10.42.0.2,10.42.0.3 + 2 more..."}},
		{"empty slice", sliceBase + "placeholder", sliceCols, []string{"placeholder", "IPv4", "<unset>", "<unset>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cs.CoreV1().RESTClient().Get().AbsPath(tc.path).SetHeader("Accept", tableAccept).DoRaw(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var tbl metav1.Table
			if err := json.Unmarshal(b, &tbl); err != nil {
				t.Fatal(err)
			}
			if len(tbl.Rows) != 1 {
				t.Fatalf("%d rows: %s", len(tbl.Rows), b)
			}
			var cols []string
			for _, d := range tbl.ColumnDefinitions {
				cols = append(cols, d.Name)
			}
			if !slices.Equal(cols, tc.columns) {
				t.Errorf("columns %v, want %v", cols, tc.columns)
			}
			var cells []string
			for _, c := range tbl.Rows[0].Cells[:len(tc.cells)] {
				cells = append(cells, fmt.Sprint(c))
			}
			if !slices.Equal(cells, tc.cells) {
				t.Errorf("cells %q, want %q", cells, tc.cells)
			}
		})
	}
}
