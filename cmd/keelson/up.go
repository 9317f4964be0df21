package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/gitsync"
)

// upOptions are the flags of `keelson up`: every flag of `keelson server`,
// the agent's flags about this machine, and images to import.
type upOptions struct {
	server serverOptions
	agent  agentOptions
	images []string
}

func newUpCmd(g *globalFlags) *cobra.Command {
	o := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run everything on this machine: etcd, the API, the sync from Git, the controllers and a node agent",
		Long: `Run keelson on this machine in one process: the embedded etcd (or
--etcd-endpoints), the API, the sync of --repo/--path (by default the Git
repository and folder of the current directory), the controllers, the scheduler
and a local node agent. When no containerd answers on --containerd-socket, keelson
up starts its own (state in <data-dir>/containerd) and restarts it if it dies.

Ctrl-C stops it; containers keep running, and keelson up on the same --data-dir
resumes where it stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.defaultRepo(cmd.Flags().Changed("path")); err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("keelson up runs containers (network namespaces, cgroups, a bridge), which needs root: run it as root, or run keelson server alone")
			}
			return runUp(cmd.Context(), o, g, cmd.ErrOrStderr())
		},
	}
	o.server.addFlags(cmd)
	f := cmd.Flags()
	f.Lookup("repo").Usage = "the repository whose manifests are the cluster's desired state: a URL, a local Git repository or a plain directory (default: the Git repository of the current directory)"
	f.Lookup("path").Usage = "the folder of --repo to read (default: the current directory's folder in the repository when --repo is not given, else the whole tree)"
	o.agent.addNodeFlags(f)
	f.StringVar(&o.agent.listen, "agent-listen", ":10250", "the local agent's HTTPS endpoint (container logs), which only the API calls")
	f.Lookup("containerd-socket").Usage = "containerd's socket; when none answers there, keelson up runs its own in <data-dir>/containerd"
	f.StringSliceVar(&o.images, "import-image", nil, "image archives (as 'make images' writes) to import into containerd before pods start")
	return cmd
}

// defaultRepo makes the Git repository of the working directory the repo to
// sync when --repo is not given, and its folder the path unless --path is.
func (o *upOptions) defaultRepo(pathSet bool) error {
	if o.server.sync.Repo != "" || o.server.configFile != "" {
		return nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return fmt.Errorf("no --repo, and %s is not inside a Git repository: run keelson up in one, or pass --repo (and --path)", wd)
		}
		root = parent
	}
	o.server.sync.Repo = root
	if rel, err := filepath.Rel(root, wd); err == nil && rel != "." && !pathSet {
		o.server.sync.Path = filepath.ToSlash(rel)
	}
	return nil
}

// runUp runs the control plane and the local node until ctx ends, then stops
// the agent, containerd and the control plane, in that order.
func runUp(ctx context.Context, o *upOptions, g *globalFlags, stderr io.Writer) error {
	lowerGCPercent()
	data := o.server.dataDir
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not writable (%w): fix its permissions or choose another with --data-dir", data, err)
	}
	p, log, closeLog, err := upLogging(g, stderr, data)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := o.wire(p); err != nil {
		return err
	}
	log.Info("keelson up", "repo", o.server.sync.Repo, "path", o.server.sync.Path, "data_dir", data, "node", o.agent.nodeName)

	// The server stops last, after the agent and containerd, so its context
	// is not the signal's.
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	serverDone := make(chan struct{})
	var serverErr error
	go func() { serverErr = runServer(srvCtx, &o.server, log); close(serverDone) }()

	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	go func() {
		select {
		case <-serverDone: // it failed: nothing to run a node for
			stopNode()
		case <-nodeCtx.Done():
		}
	}()
	nodeErr := runLocalNode(nodeCtx, o, p, log, serverDone)
	stopNode()
	log.Info("stopping the control plane")
	stopServer()
	<-serverDone
	if p.out != nil {
		fmt.Fprintf(stderr, "keelson up stopped (log: %s); containers keep running, and keelson up resumes them\n", filepath.Join(data, "keelson.log"))
	}
	if serverErr != nil {
		return serverErr // what the node reports then follows from it
	}
	return ignoreCanceled(nodeErr)
}

// upLogging picks the output: on a terminal the progress display, with the
// full log in <data-dir>/keelson.log; otherwise log lines on stderr.
func upLogging(g *globalFlags, stderr io.Writer, data string) (*progress, *slog.Logger, func(), error) {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		log, err := g.logger(stderr)
		if err != nil {
			return nil, nil, nil, err
		}
		return newProgress(nil, log, ""), log, func() {}, nil
	}
	logPath := filepath.Join(data, "keelson.log")
	file, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("log file: %w", err)
	}
	log, err := g.logger(file)
	if err != nil {
		file.Close()
		return nil, nil, nil, err
	}
	p := newProgress(stderr, log, "keelson up — data "+data+", log "+logPath)
	p.width, _, _ = term.GetSize(int(f.Fd()))
	return p, slog.New(problemHandler{log.Handler(), p}), func() { file.Close() }, nil
}

// wire connects the server and the agent: the agent's node token (kept in
// the data dir, so a restart keeps it) is accepted by the API in memory,
// and the agent reaches the API on its listen address.
func (o *upOptions) wire(p *progress) error {
	data := o.server.dataDir
	token, err := nodeToken(filepath.Join(data, "node.token"))
	if err != nil {
		return err
	}
	user := "system:node:" + o.agent.nodeName
	o.server.extraTokens = fmt.Sprintf("%s,%s,%s,%q\n", token, user, user, apiserver.GroupNodes)
	o.server.onSyncStatus = func(s gitsync.Status) {
		name := ""
		if s.Name != "default" {
			name = "sync " + s.Name + ": " // one of several in a --config file
		}
		if s.Reason == gitsync.ReasonSucceeded {
			p.set(stepSync, true, "%srevision %s applied: %d objects", name, s.LastApplied.Short(), s.Created+s.Updated+s.Unchanged)
			return
		}
		p.set(stepSync, false, "%srevision %s not applied (%s): %s", name, s.LastAttempted.Short(), s.Reason, firstLineOf(s.Message, 120))
	}
	a := &o.agent
	a.clusterDNS, a.domain = nil, o.server.services.clusterDomain
	if o.server.services.dnsAddr != "" {
		a.clusterDNS = []string{o.server.serviceCIDR.DNSIP().String()}
	}
	if o.server.services.advertise == "" {
		// The node and the control plane are one machine: one address.
		o.server.services.advertise = a.hostIP
	}
	a.tokenFile = filepath.Join(data, "node.token")
	a.dataDir = filepath.Join(data, "agent")
	a.servers = []string{"http://" + dialAddr(o.server.listen)}
	if o.server.tls {
		a.servers = []string{"https://" + dialAddr(o.server.listen)}
		a.caFile = apiserver.TLSFilesIn(data).CACert
	}
	return nil
}

// nodeToken reads the local agent's token, making it on first start.
func nodeToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the node token: %w", err)
	}
	return token, nil
}

// loadTokens reads a token file and adds extra lines in memory.
func loadTokens(path, extra string) (*apiserver.Tokens, error) {
	if extra == "" {
		return apiserver.LoadTokens(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t, err := apiserver.ParseTokens(io.MultiReader(bytes.NewReader(b), strings.NewReader("\n"+extra)))
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}
