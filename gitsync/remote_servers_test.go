package gitsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// gitHTTPBackend is Git's own smart HTTP server, a CGI program.
const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// httpServer says how serveHTTP serves.
type httpServer struct {
	// allow, when set, serves only requests whose basic-auth credentials it
	// accepts; the others get 401.
	allow func(user, pass string) bool
	// packs, when set, counts the requests for a pack (POST git-upload-pack).
	packs *atomic.Int32
}

// serveHTTP serves the repository at dir over Git's smart HTTP protocol with
// git http-backend, and returns its URL and the server, which stops with the
// test.
func serveHTTP(t *testing.T, dir string, opts httpServer) (string, *httptest.Server) {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Fatalf("git http-backend is needed (make deps installs git): %v", err)
	}
	backend := &cgi.Handler{
		Path: gitHTTPBackend,
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(dir), "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.allow != nil {
			user, pass, ok := r.BasicAuth()
			if !ok || !opts.allow(user, pass) {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if opts.packs != nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			opts.packs.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(dir), srv
}

// sshServer is an SSH server that runs git-upload-pack for clients holding
// one key, as a Git host does.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
	keyFile string // the client's private key, PEM
}

// serveSSH starts an sshServer on a loopback port; it stops with the test.
func serveSSH(t *testing.T) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeSSHKey(t, clientPriv)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSHConn(c, cfg)
		}
	}()
	return &sshServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), keyFile: keyFile}
}

// knownHosts writes a known_hosts file that trusts key for host.
func knownHosts(t *testing.T, host string, key ssh.PublicKey) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(host)}, key) + "\n"
	if err := os.WriteFile(f, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func serveSSHConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSSHSession(ch, requests)
	}
}

// serveSSHSession runs the one command a Git client asks for:
// git-upload-pack '<path>'.
func serveSSHSession(ch ssh.Channel, requests <-chan *ssh.Request) {
	defer ch.Close()
	for req := range requests {
		if req.Type != "exec" {
			req.Reply(req.Type == "env", nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			req.Reply(false, nil)
			return
		}
		name, arg, _ := strings.Cut(p.Command, " ")
		if name != "git-upload-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		status := runUploadPack(ch, strings.Trim(arg, "'"))
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func runUploadPack(ch ssh.Channel, dir string) uint32 {
	cmd := exec.Command("git-upload-pack", dir)
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	in, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		return 127
	}
	// Not waited for: the client may keep its side open after the pack.
	go func() { io.Copy(in, ch); in.Close() }()
	if err := cmd.Wait(); err != nil {
		return 1
	}
	return 0
}

// writeSSHKey writes key to a file as OpenSSH writes private keys.
func writeSSHKey(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(f, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
