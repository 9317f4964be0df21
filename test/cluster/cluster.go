package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/internal/netnstest"
	"github.com/keelson/keelson/store/encryption"
	"github.com/keelson/keelson/store/etcdtest"
)

// Ports every host uses: each host has an address of its own.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
	APIPort        = 7443
	AgentPort      = 10250
)

// AdminToken is the bearer token of the cluster's admin (system:masters).
const AdminToken = "admin-token"

// Config sizes a test cluster and says what it syncs.
type Config struct {
	// Hosts is the number of machines, h1…hN, each a network namespace
	// plugged into one switch, at 10.99.0.11, .12, ….
	Hosts int
	// Etcd members run on the first Etcd hosts, keelson servers on the
	// first Servers hosts, agents (each with a containerd of its own) on
	// the last Agents hosts. A host may hold several of them, as a
	// machine of a small cluster does.
	Etcd, Servers, Agents int
	// Binary is keelson's binary; keelson-logger must be beside it, as
	// installed.
	Binary string
	// Repo is the Git repository the servers sync (a path on this
	// machine: every host sees the same files), branch main; Path its
	// folder.
	Repo, Path string
	// Images are OCI archives imported into every agent's containerd.
	Images []string
	// Hollow is a number of simulated nodes (keelson agent --runtime
	// simulated), hollow-0…, run by one process on the last host: they
	// register, renew their leases and report their pods Running, with no
	// containers.
	Hollow int
	// LeaderLease is the servers' --leader-lease-duration. Default 5s.
	LeaderLease time.Duration
	// ServerArgs and AgentArgs are more flags for every server and agent.
	ServerArgs, AgentArgs []string
}

// Host is one machine of the cluster.
type Host struct {
	// Name is h1, h2, …; agents register it as their node's name.
	Name string
	// IP is the host's address on the switch.
	IP string
	// NS is the host's network namespace.
	NS *netnstest.NS
	// Etcd, Server and Agent are the host's processes, nil for the roles
	// it does not have.
	Etcd, Server, Agent *Proc
	// Hollow runs the cluster's simulated nodes, on the last host.
	Hollow *Proc
	// Containerd is the agent's containerd, nil without an agent.
	Containerd *containerdtest.Daemon
	port       string // the host's port on the switch
	dataDir    string
}

// Cluster is a running test cluster.
type Cluster struct {
	Hosts []*Host
	// Dir holds every host's files: data dirs, certificates, tokens, logs.
	Dir    string
	cfg    Config
	sw     *netnstest.NS
	apiCA  string
	etcdCA *etcdtest.CA
}

// New starts a cluster: the switch and hosts, the etcd members (TLS between
// members and to clients), the servers on that etcd, then the agents, and
// waits until etcd answers, every server is ready and every node is Ready.
// Everything is stopped and removed at the end of the test.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Hosts < 1 || cfg.Etcd < 1 || cfg.Servers < 1 || cfg.Etcd > cfg.Hosts || cfg.Servers > cfg.Hosts || cfg.Agents > cfg.Hosts {
		t.Fatalf("cluster: %d hosts cannot hold %d etcd members, %d servers, %d agents", cfg.Hosts, cfg.Etcd, cfg.Servers, cfg.Agents)
	}
	if cfg.LeaderLease == 0 {
		cfg.LeaderLease = 5 * time.Second
	}
	if cfg.Agents > 0 {
		containerdtest.Require(t)
	}
	dir, err := os.MkdirTemp("", "kcl-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, cfg: cfg}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(t)
		}
		os.RemoveAll(dir)
	})
	c.network(t)
	c.pki(t)
	c.startEtcd(t)
	c.startServers(t)
	c.startAgents(t)
	c.startHollow(t)
	return c
}

// startHollow starts the simulated nodes and waits until they are all
// Ready.
func (c *Cluster) startHollow(t testing.TB) {
	t.Helper()
	if c.cfg.Hollow == 0 {
		return
	}
	h := c.Hosts[len(c.Hosts)-1]
	h.Hollow = c.proc(h, "hollow", c.cfg.Binary, "agent", "--runtime", "simulated", "--nodes", fmt.Sprint(c.cfg.Hollow),
		"--node-name", "hollow", "--server", strings.Join(c.APIServers(), ","), "--ca-file", c.apiCA,
		"--token-file", filepath.Join(c.Dir, "pki", "hollow.tokens"))
	h.Hollow.start(t)
	t.Cleanup(func() { h.Hollow.Kill(t) })
	c.eventually(t, 10*time.Minute, fmt.Sprintf("%d simulated nodes Ready", c.cfg.Hollow), func() (string, bool) {
		client, _ := c.AnyClient(t)
		if client == nil {
			return "no server answers", false
		}
		nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "keelson.dev/hollow=true"})
		if err != nil {
			return err.Error(), false
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return fmt.Sprintf("%d of %d Ready", ready, c.cfg.Hollow), ready == c.cfg.Hollow
	}, h.Hollow)
}

// network makes the switch (a bridge in a namespace of its own, so that
// nothing of this machine's own network changes) and a host on it per
// Config.Hosts.
func (c *Cluster) network(t testing.TB) {
	t.Helper()
	c.sw = netnstest.New(t, "switch")
	c.sw.Bridge(t, "sw0", "10.99.0.1/24")
	for i := range c.cfg.Hosts {
		h := &Host{Name: fmt.Sprintf("h%d", i+1), IP: fmt.Sprintf("10.99.0.%d", 11+i)}
		h.NS = c.sw.Pod(t, h.Name, "sw0", h.IP+"/24", "10.99.0.1")
		h.port = "v" + h.Name
		h.dataDir = filepath.Join(c.Dir, h.Name)
		c.Hosts = append(c.Hosts, h)
	}
}

// pki makes the etcd CA with a certificate per member and one for the
// servers as etcd's clients, the API's CA that every server shares, and
// the token file.
func (c *Cluster) pki(t testing.TB) {
	t.Helper()
	pki := filepath.Join(c.Dir, "pki")
	c.etcdCA = etcdtest.NewCA(t, pki, "etcd-ca")
	api := etcdtest.NewCA(t, pki, "api-ca")
	c.apiCA = api.CertFile
	var tokens strings.Builder
	fmt.Fprintf(&tokens, "%s,admin,uid-admin,\"system:masters\"\n", AdminToken)
	for _, h := range c.Hosts {
		fmt.Fprintf(&tokens, "%s-token,system:node:%s,uid-%s,\"system:nodes\"\n", h.Name, h.Name, h.Name)
		writeFile(t, filepath.Join(h.dataDir, "node.token"), []byte(h.Name+"-token\n"))
	}
	var hollow strings.Builder
	for i := range c.cfg.Hollow {
		fmt.Fprintf(&tokens, "hollow-%d-token,system:node:hollow-%d,uid-hollow-%d,\"system:nodes\"\n", i, i, i)
		fmt.Fprintf(&hollow, "hollow-%d-token\n", i)
	}
	writeFile(t, filepath.Join(pki, "hollow.tokens"), []byte(hollow.String()))
	writeFile(t, filepath.Join(pki, "tokens.csv"), []byte(tokens.String()))
	// One encryption key file for every server: each seals Secrets in etcd
	// with its first key and must open what the others sealed.
	if _, err := encryption.Generate(filepath.Join(pki, "encryption-keys.yaml")); err != nil {
		t.Fatal(err)
	}
	// Every server serves with a certificate of its own, signed by the one
	// CA agents and clients trust: the CA's files are copied into each
	// server's data dir before its first start.
	caCert, err := os.ReadFile(api.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(api.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.Hosts[:c.cfg.Servers] {
		f := apiserver.TLSFilesIn(filepath.Join(h.dataDir, "server"))
		writeFile(t, f.CACert, caCert)
		writeFile(t, f.CAKey, caKey)
	}
}

func (c *Cluster) proc(h *Host, role, bin string, args ...string) *Proc {
	return &Proc{Name: role + "-" + h.Name, host: h, bin: bin, args: args, log: filepath.Join(c.Dir, role+"-"+h.Name+".log")}
}

// EtcdEndpoints are the members' client URLs.
func (c *Cluster) EtcdEndpoints() []string {
	var out []string
	for _, h := range c.Hosts[:c.cfg.Etcd] {
		out = append(out, fmt.Sprintf("https://%s:%d", h.IP, EtcdClientPort))
	}
	return out
}

func (c *Cluster) startEtcd(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		containerdtest.Unavailable(t, "the cluster tests", "no etcd binary on PATH (Debian's etcd-server)")
	}
	var initial []string
	for _, h := range c.Hosts[:c.cfg.Etcd] {
		initial = append(initial, fmt.Sprintf("%s=https://%s:%d", h.Name, h.IP, EtcdPeerPort))
	}
	for _, h := range c.Hosts[:c.cfg.Etcd] {
		dir := filepath.Join(h.dataDir, "etcd")
		cert, key := c.etcdCA.Issue(t, dir, "member", h.IP)
		client := fmt.Sprintf("https://%s:%d", h.IP, EtcdClientPort)
		peer := fmt.Sprintf("https://%s:%d", h.IP, EtcdPeerPort)
		h.Etcd = c.proc(h, "etcd", bin,
			"--name", h.Name, "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "keelson-test",
			"--cert-file", cert, "--key-file", key, "--trusted-ca-file", c.etcdCA.CertFile, "--client-cert-auth",
			"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", c.etcdCA.CertFile, "--peer-client-cert-auth",
			// As an operator runs etcd for keelson: history compacted
			// after an hour, room for a large cluster's objects.
			"--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h", "--quota-backend-bytes", fmt.Sprint(8<<30),
			"--logger", "zap", "--log-level", "warn")
		h.Etcd.start(t)
		t.Cleanup(func() { h.Etcd.Kill(t) })
	}
	for _, h := range c.Hosts[:c.cfg.Etcd] {
		c.WaitEtcd(t, h)
	}
}

// WaitEtcd waits until the member on h says it is healthy (it has a leader
// and answers a read through the cluster).
func (c *Cluster) WaitEtcd(t testing.TB, h *Host) {
	t.Helper()
	cert, key := filepath.Join(h.dataDir, "etcd", "member.crt"), filepath.Join(h.dataDir, "etcd", "member.key")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.httpClient(t, c.etcdCA.CertFile, &pair)
	url := fmt.Sprintf("https://%s:%d/health", h.IP, EtcdClientPort)
	c.eventually(t, 60*time.Second, "etcd on "+h.Name+" healthy", func() (string, bool) {
		resp, err := hc.Get(url)
		if err != nil {
			return err.Error(), false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`)
	}, h.Etcd)
}

func (c *Cluster) startServers(t testing.TB) {
	t.Helper()
	clientCert, clientKey := c.etcdCA.Issue(t, filepath.Join(c.Dir, "pki"), "keelson-etcd-client")
	for _, h := range c.Hosts[:c.cfg.Servers] {
		args := []string{"server",
			"--data-dir", filepath.Join(h.dataDir, "server"),
			"--listen", fmt.Sprintf("%s:%d", h.IP, APIPort), "--advertise-address", h.IP,
			"--token-auth-file", filepath.Join(c.Dir, "pki", "tokens.csv"),
			"--encryption-key-file", filepath.Join(c.Dir, "pki", "encryption-keys.yaml"),
			"--etcd-endpoints", strings.Join(c.EtcdEndpoints(), ","),
			"--etcd-cert", clientCert, "--etcd-key", clientKey, "--etcd-ca", c.etcdCA.CertFile,
			"--leader-lease-duration", c.cfg.LeaderLease.String(),
		}
		if c.cfg.Repo != "" {
			args = append(args, "--repo", c.cfg.Repo, "--ref", "main", "--path", c.cfg.Path, "--sync-interval", "2s")
		}
		h.Server = c.proc(h, "server", c.cfg.Binary, append(args, c.cfg.ServerArgs...)...)
		h.Server.start(t)
		t.Cleanup(func() { h.Server.Kill(t) })
	}
	for _, h := range c.Hosts[:c.cfg.Servers] {
		c.WaitServer(t, h)
	}
}

// WaitServer waits until the server on h answers /readyz.
func (c *Cluster) WaitServer(t testing.TB, h *Host) {
	t.Helper()
	c.eventually(t, 60*time.Second, "server on "+h.Name+" ready", func() (string, bool) {
		code, body, err := c.adminGet(t, h, "/readyz")
		if err != nil {
			return err.Error(), false
		}
		return body, code == http.StatusOK
	}, h.Server)
}

// adminGet sends GET path to the server on h as the admin, and returns the
// answer's status and body.
func (c *Cluster) adminGet(t testing.TB, h *Host, path string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s:%d%s", h.IP, APIPort, path), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	resp, err := c.httpClient(t, c.apiCA, nil).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// APIServers are the servers' URLs, as agents are given them.
func (c *Cluster) APIServers() []string {
	var out []string
	for _, h := range c.Servers() {
		out = append(out, fmt.Sprintf("https://%s:%d", h.IP, APIPort))
	}
	return out
}

func (c *Cluster) startAgents(t testing.TB) {
	t.Helper()
	for _, h := range c.Agents() {
		h.Containerd = containerdtest.StartDaemon(t)
		for _, img := range c.cfg.Images {
			if out, err := exec.Command(c.cfg.Binary, "image", "import", "--containerd-socket", h.Containerd.Socket, img).CombinedOutput(); err != nil {
				t.Fatalf("import %s on %s: %v\n%s", img, h.Name, err, out)
			}
		}
		agentDir := filepath.Join(h.dataDir, "agent")
		// After the agent is killed, before its containerd stops.
		t.Cleanup(func() { cleanNode(t, h.Containerd.Socket, agentDir) })
		args := []string{"agent",
			"--server", strings.Join(c.APIServers(), ","), "--ca-file", c.apiCA,
			"--token-file", filepath.Join(h.dataDir, "node.token"),
			"--node-name", h.Name, "--host-ip", h.IP, "--listen", fmt.Sprintf("%s:%d", h.IP, AgentPort),
			"--containerd-socket", h.Containerd.Socket, "--data-dir", agentDir,
		}
		h.Agent = c.proc(h, "agent", c.cfg.Binary, append(args, c.cfg.AgentArgs...)...)
		h.Agent.start(t)
		t.Cleanup(func() { h.Agent.Kill(t) })
	}
	for _, h := range c.Agents() {
		c.WaitNodeReady(t, h)
	}
}

// WaitNodeReady waits until h's node is Ready, as any server tells.
func (c *Cluster) WaitNodeReady(t testing.TB, h *Host) {
	t.Helper()
	c.eventually(t, 90*time.Second, "node "+h.Name+" Ready", func() (string, bool) {
		client, _ := c.AnyClient(t)
		if client == nil {
			return "no server answers", false
		}
		n, err := client.CoreV1().Nodes().Get(context.Background(), h.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message), cond.Status == corev1.ConditionTrue
			}
		}
		return "no Ready condition", false
	}, h.Agent)
}

// Servers are the hosts with a server; Agents those with an agent.
func (c *Cluster) Servers() []*Host { return c.Hosts[:c.cfg.Servers] }

// Agents are the hosts with an agent.
func (c *Cluster) Agents() []*Host { return c.Hosts[len(c.Hosts)-c.cfg.Agents:] }

// Host returns the host named name.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Dial connects from the switch's namespace, as a machine on the hosts'
// network would: the test process itself reaches no host otherwise.
func (c *Cluster) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := c.sw.Do(func() error {
		var err error
		conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

func (c *Cluster) httpClient(t testing.TB, caFile string, cert *tls.Certificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("CA %s: %v", caFile, err)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: c.Dial, TLSClientConfig: cfg}}
}

// Config returns a client-go config of the server on h, as the admin.
func (c *Cluster) RESTConfig(h *Host) *rest.Config {
	return &rest.Config{
		Host: fmt.Sprintf("https://%s:%d", h.IP, APIPort), BearerToken: AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAFile: c.apiCA},
		ContentConfig:   rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		Dial:            c.Dial, Timeout: 10 * time.Second, QPS: 100, Burst: 200,
	}
}

// Client returns an admin client of the server on h.
func (c *Cluster) Client(t testing.TB, h *Host) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(c.RESTConfig(h))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// NodeClient returns a client of the server on h with the token of node
// name (one of the hosts': "<host>-token"), which the API lets write only
// that node's objects.
func (c *Cluster) NodeClient(t testing.TB, h *Host, name string) kubernetes.Interface {
	t.Helper()
	cfg := c.RESTConfig(h)
	cfg.BearerToken = name + "-token"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// AnyClient returns an admin client of a server that runs, and its host.
func (c *Cluster) AnyClient(t testing.TB) (kubernetes.Interface, *Host) {
	t.Helper()
	for _, h := range c.Servers() {
		if h.Server.Running() {
			return c.Client(t, h), h
		}
	}
	return nil, nil
}

// Leader returns the host whose server leads (its keelson_leader metric is
// 1), or nil when none answers that it does.
func (c *Cluster) Leader(t testing.TB) *Host {
	t.Helper()
	var leaders []*Host
	for _, h := range c.Servers() {
		if h.Server.Running() && c.Leading(t, h) {
			leaders = append(leaders, h)
		}
	}
	switch len(leaders) {
	case 0:
		return nil
	case 1:
		return leaders[0]
	}
	t.Fatalf("several servers say they lead: %v", leaders)
	return nil
}

// Leading reports whether the server on h says, on /metrics, that it leads.
func (c *Cluster) Leading(t testing.TB, h *Host) bool {
	t.Helper()
	code, body, err := c.adminGet(t, h, "/metrics")
	return err == nil && code == http.StatusOK && strings.Contains(body, `keelson_leader{election="controllers"} 1`)
}

// Cut takes h off the network (its switch port goes down), as a pulled
// cable or a partition does; Reconnect plugs it back.
func (c *Cluster) Cut(t testing.TB, h *Host) { c.setPort(t, h, false) }

// Reconnect plugs h back into the switch.
func (c *Cluster) Reconnect(t testing.TB, h *Host) { c.setPort(t, h, true) }

func (c *Cluster) setPort(t testing.TB, h *Host, up bool) {
	t.Helper()
	l, err := c.sw.NL.LinkByName(h.port)
	if err != nil {
		t.Fatalf("switch port of %s: %v", h.Name, err)
	}
	if up {
		err = c.sw.NL.LinkSetUp(l)
	} else {
		err = c.sw.NL.LinkSetDown(l)
	}
	if err != nil {
		t.Fatalf("switch port of %s up=%v: %v", h.Name, up, err)
	}
}

// eventually polls cond every 100 ms until it holds or within passes; the
// failure shows cond's last word, and the output of p when p has exited.
func (c *Cluster) eventually(t testing.TB, within time.Duration, what string, cond func() (string, bool), p *Proc) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if last, ok = cond(); ok {
			return
		}
		if p != nil && !p.Running() {
			t.Fatalf("%s: %s exited:\n%s", what, p.Name, tail(p.Output(), 60))
		}
	}
	t.Fatalf("%s: not within %s; last: %s", what, within, last)
}

// Eventually polls cond every 100 ms until it holds, failing the test after
// within with cond's last word.
func Eventually(t testing.TB, within time.Duration, what string, cond func() (string, bool)) {
	t.Helper()
	(&Cluster{}).eventually(t, within, what, cond, nil)
}

func (c *Cluster) dumpLogs(t testing.TB) {
	for _, h := range c.Hosts {
		for _, p := range []*Proc{h.Etcd, h.Server, h.Agent, h.Hollow} {
			if p != nil {
				t.Logf("--- %s (last lines):\n%s", p.Name, tail(p.Output(), 80))
			}
		}
	}
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunningContainers lists the containers running on h's containerd as
// "namespace/pod/container", sorted: what the host really runs, whatever
// the API says.
func (h *Host) RunningContainers(ctx context.Context) ([]string, error) {
	if h.Containerd == nil {
		return nil, nil
	}
	rt, err := containerd.New(ctx, h.Containerd.Socket, "")
	if err != nil {
		return nil, fmt.Errorf("containerd of %s: %w", h.Name, err)
	}
	defer rt.Close()
	cs, err := rt.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("containers of %s: %w", h.Name, err)
	}
	var out []string
	for _, ctr := range cs {
		if ctr.State == runtime.StateRunning {
			out = append(out, ctr.Spec.PodNamespace+"/"+ctr.Spec.PodName+"/"+ctr.Spec.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// cleanNode removes what a killed agent left, as a node's reboot would:
// its containers, and the namespaces and mounts under its data dir.
func cleanNode(t testing.TB, socket, agentDir string) {
	rt, err := containerd.New(context.Background(), socket, "")
	if err != nil {
		t.Errorf("clean node: %v", err)
		return
	}
	defer rt.Close()
	cs, _ := rt.List(context.Background())
	for _, ctr := range cs {
		_ = rt.Remove(context.Background(), ctr.ID)
	}
	nss, _ := filepath.Glob(filepath.Join(agentDir, "netns", "*"))
	for _, ns := range nss {
		_ = network.RemoveNetNS(ns)
	}
	containerdtest.UnmountAll(agentDir)
}
