package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/internal/servicenet"
)

// backendYAML is a 3-replica Deployment whose pods answer their name at
// /cgi-bin/who, and report not ready while the ConfigMap "unready" lists
// them: a backend is taken out by a commit. Services in front of it: a
// ClusterIP one, a headless one and a NodePort one.
//
// On node, when not empty, the backends run on that node only.
func backendYAML(unready string, nodePort int, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: backend, namespace: svc}
data:
  unready: %q
  who: |
    #!/bin/sh
    printf 'Content-Type: text/plain\r\n\r\n%%s' "$HOSTNAME"
  ready: |
    #!/bin/sh
    if grep -qx "$HOSTNAME" /www/cgi-bin/unready; then printf 'Status: 503 Unavailable\r\n\r\n'; exit 0; fi
    printf 'Content-Type: text/plain\r\n\r\nok'
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: svc}
spec:
  replicas: 3
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      nodeSelector: %[4]s
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: %[3]s
        imagePullPolicy: IfNotPresent
        command: [httpd, -f, -p, "8080", -h, /www]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /cgi-bin/ready, port: http}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{name: cgi, mountPath: /www/cgi-bin}]
      volumes:
      - name: cgi
        configMap: {name: backend, defaultMode: 0755}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: svc}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: backend-headless, namespace: svc}
spec:
  clusterIP: None
  selector: {app: backend}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: backend-np, namespace: svc}
spec:
  type: NodePort
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: http, nodePort: %[2]d}]
`, unready, nodePort, ociarchive.BusyboxRef, onNode(node))
}

// onNode is the nodeSelector of pods that must run on node ("" for any).
func onNode(node string) string {
	if node == "" {
		return "{}"
	}
	return "{kubernetes.io/hostname: " + node + "}"
}

// clientYAML is a pod that asks the backend service twice a loop, by its
// DNS name and by the address its environment gives, and logs who answered;
// on node, when not empty.
func clientYAML(node string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: svc}
spec:
  nodeSelector: ` + onNode(node) + `
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: ` + ociarchive.BusyboxRef + `
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      i=0
      while true; do
        i=$((i+1))
        a=$(timeout 2 wget -q -O - http://backend/cgi-bin/who 2>&1 | tr -d '\n')
        b=$(timeout 2 wget -q -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT_HTTP/cgi-bin/who 2>&1 | tr -d '\n')
        echo "$i dns=$a env=$b"
        sleep 0.1
      done
`
}

const namespaceYAML = "apiVersion: v1\nkind: Namespace\nmetadata: {name: svc}\n"

// TestServices is issue 15's end-to-end check on one node, as a user runs
// keelson: a client pod reaches a 3-replica Deployment through its service
// by DNS name and by the cluster IP of its environment, and sees every
// backend; a backend made unready by a commit leaves the EndpointSlice and
// gets no new connection; the node port answers from the host; cluster DNS,
// asked at the DNS service's address, lists the headless service's pod
// addresses; and `keelson agent --cleanup` removes the rules.
func TestServices(t *testing.T) {
	u := newUpFixture(t)
	nodePort := 31000 + os.Getpid()%1500
	commit(t, u.repo, "svc/namespace.yaml", namespaceYAML, "namespace")
	commit(t, u.repo, "svc/backend.yaml", backendYAML("", nodePort, ""), "backend")
	up := u.start(t, u.repo, "--path", "svc")
	u.waitPods(t, up, 3)
	c := u.client(t)
	backends := podNames(t, c, "app=backend")

	// The client starts once the service has its address, which its
	// environment then holds.
	eventuallyOut(t, "the backend service's cluster IP", func() (string, bool) {
		s, err := c.CoreV1().Services("svc").Get(t.Context(), "backend", metav1.GetOptions{})
		return fmt.Sprint(s, err), err == nil && s.Spec.ClusterIP != ""
	})
	commit(t, u.repo, "svc/client.yaml", clientYAML(""), "client")
	u.waitPods(t, up, 4)

	t.Run("by name and by cluster IP, every backend", func(t *testing.T) {
		eventuallyOut(t, "answers from all three backends by DNS and by environment", func() (string, bool) {
			dnsSeen, envSeen, logs := whoAnswered(t, c, 0)
			return logs, len(dnsSeen) == 3 && len(envSeen) == 3 && sameKeys(dnsSeen, backends)
		})
	})

	t.Run("headless DNS lists the pods", func(t *testing.T) {
		var want []string
		for _, p := range u.pods(t, "app=backend") {
			want = append(want, p.Status.PodIP)
		}
		slices.Sort(want)
		cidr, _ := servicenet.ParseCIDR(testServiceCIDR)
		eventuallyOut(t, "the headless service's A records", func() (string, bool) {
			got, err := lookupA(net.JoinHostPort(cidr.DNSIP().String(), "53"), "backend-headless.svc.svc.cluster.local.")
			return fmt.Sprintf("%v (want %v) %v", got, want, err), err == nil && slices.Equal(got, want)
		})
	})

	t.Run("node port from the host", func(t *testing.T) {
		nodeIP := nodeAddress(t, c, "local")
		eventuallyOut(t, "an answer on the node port", func() (string, bool) {
			body, err := httpGet(fmt.Sprintf("http://%s:%d/cgi-bin/who", nodeIP, nodePort))
			return body, err == nil && slices.Contains(backends, body)
		})
	})

	t.Run("an unready backend gets no new connection", func(t *testing.T) {
		out := backends[0]
		commit(t, u.repo, "svc/backend.yaml", backendYAML(out, nodePort, ""), "take "+out+" out")
		eventuallyOut(t, out+" not ready in the EndpointSlice", func() (string, bool) {
			ready, all := sliceEndpoints(t, c, "backend")
			return fmt.Sprintf("ready %v of %v", ready, all), len(all) == 3 && len(ready) == 2 && !slices.Contains(ready, out)
		})
		// The node proxy follows within a second; what the client logs
		// from the next second on never names the unready backend.
		time.Sleep(time.Second)
		_, _, before := whoAnswered(t, c, 0)
		from := strings.Count(before, "\n")
		eventuallyOut(t, "30 more answers, none from "+out, func() (string, bool) {
			dnsSeen, envSeen, logs := whoAnswered(t, c, from)
			n := 0
			for _, k := range []map[string]int{dnsSeen, envSeen} {
				for _, v := range k {
					n += v
				}
			}
			if dnsSeen[out] > 0 || envSeen[out] > 0 {
				t.Fatalf("%s answered after it left the EndpointSlice:\n%s", out, logs)
			}
			return logs, n >= 60
		})
	})

	t.Run("cleanup removes the rules", func(t *testing.T) {
		if !tableExists(t, testTable) {
			t.Fatalf("no nftables table %s while the agent runs", testTable)
		}
		if code := u.interrupt(t, up); code != 0 {
			t.Fatalf("keelson up exited %d", code)
		}
		if !tableExists(t, testTable) {
			t.Fatalf("table %s gone when keelson up stopped: a restarted agent would find no rules and live traffic would break", testTable)
		}
		out, err := exec.Command(binary, "agent", "--cleanup", "--nftables-table", testTable).CombinedOutput()
		if err != nil {
			t.Fatalf("keelson agent --cleanup: %v\n%s", err, out)
		}
		if tableExists(t, testTable) {
			t.Errorf("table %s still there after --cleanup", testTable)
		}
	})
}

// whoAnswered counts who answered the client, by DNS name and by environment,
// in its log lines from the from-th on.
func whoAnswered(t testing.TB, c kubernetes.Interface, from int) (dnsSeen, envSeen map[string]int, logs string) {
	b, err := c.CoreV1().Pods("svc").GetLogs("client", &corev1.PodLogOptions{}).Do(t.Context()).Raw()
	if err != nil {
		return nil, nil, err.Error()
	}
	dnsSeen, envSeen = map[string]int{}, map[string]int{}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines[min(from, len(lines)):] {
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "dns=backend-"); ok {
				dnsSeen["backend-"+v]++
			}
			if v, ok := strings.CutPrefix(f, "env=backend-"); ok {
				envSeen["backend-"+v]++
			}
		}
	}
	return dnsSeen, envSeen, string(b)
}

func sameKeys(m map[string]int, keys []string) bool {
	for _, k := range keys {
		if m[k] == 0 {
			return false
		}
	}
	return len(m) == len(keys)
}

func podNames(t testing.TB, c kubernetes.Interface, selector string) []string {
	t.Helper()
	list, err := c.CoreV1().Pods("svc").List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

// sliceEndpoints is the pods behind a service's EndpointSlices: the ready
// ones and all.
func sliceEndpoints(t testing.TB, c kubernetes.Interface, service string) (ready, all []string) {
	list, err := c.DiscoveryV1().EndpointSlices("svc").List(t.Context(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, nil
	}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef == nil {
				continue
			}
			all = append(all, e.TargetRef.Name)
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready = append(ready, e.TargetRef.Name)
			}
		}
	}
	return ready, all
}

func nodeAddress(t testing.TB, c kubernetes.Interface, node string) string {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP", node)
	return ""
}

// lookupA asks server for name's A records, sorted.
func lookupA(server, name string) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, server)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// tableExists reports whether this machine has nftables table name (family ip).
func tableExists(t testing.TB, name string) bool {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(tables, func(tb *nftables.Table) bool { return tb.Name == name })
}
