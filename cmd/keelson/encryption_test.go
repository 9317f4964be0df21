package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/encryption"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestEncryptionKeyRotation rotates the key Secrets are encrypted with in
// etcd, as the README says: a new key first in the file, a restart, and the
// leader encrypts every Secret again with it and says the old key may go;
// without the old key the Secret is still read. A file that lost the key in
// use stops the server at start, naming it.
func TestEncryptionKeyRotation(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	value := "rotate-me-" + rand.String(16)
	commit(t, repo, "deploy/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: "+value+"\n", "a secret")
	data, keyFile := filepath.Join(dir, "server"), filepath.Join(dir, "keys.yaml")
	api, etcdClient, etcdPeer := freeAddr(t), etcdtest.FreeURL(t), etcdtest.FreeURL(t)
	serve := func(keys ...encryption.Key) *proc {
		t.Helper()
		if err := os.WriteFile(keyFile, encryption.Marshal(keys...), 0o600); err != nil {
			t.Fatal(err)
		}
		return start(t, "server", "--data-dir", data, "--listen", api, "--repo", repo, "--path", "deploy", "--sync-interval", "1s",
			"--encryption-key-file", keyFile, "--etcd-listen-client", etcdClient, "--etcd-listen-peer", etcdPeer)
	}
	// sealedWith is the name of the key etcd's copy of the Secret is
	// encrypted with, read with the plain etcd client.
	sealedWith := func() string {
		var name string
		withStore(t, etcdClient, func(s *store.Store) {
			resp, err := s.Client().Get(t.Context(), store.DefaultPrefix+"/secrets/default/db")
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("raw read of the Secret: %v %v", resp, err)
			}
			if strings.Contains(string(resp.Kvs[0].Value), value) {
				t.Fatalf("etcd holds the Secret in clear: %s", resp.Kvs[0].Value)
			}
			name, _ = encryption.KeyName(resp.Kvs[0].Value)
		})
		return name
	}
	readSecret := func() (string, error) {
		cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(data))
		if err != nil {
			return "", err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return "", err
		}
		s, err := cs.CoreV1().Secrets("default").Get(t.Context(), "db", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return string(s.Data["password"]), nil
	}
	stop := func(p *proc) {
		t.Helper()
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
		}
	}

	k1, k2 := encryption.NewKey("k1"), encryption.NewKey("k2")
	p := serve(k1)
	readyz(t, p, api, 200)
	eventuallyOut(t, "the Secret through the API", func() (string, bool) {
		got, err := readSecret()
		return fmt.Sprint(got, err), err == nil && got == value
	})
	if name := sealedWith(); name != "k1" {
		t.Fatalf("the Secret is encrypted with %q, want k1", name)
	}
	stop(p)

	p = serve(k2, k1)
	readyz(t, p, api, 200)
	eventuallyOut(t, "the old key let go of", func() (string, bool) {
		out := p.out.String()
		return out, strings.Contains(out, "no Secret is sealed with this encryption key any more: it may leave the key file") && strings.Contains(out, "key=k1")
	})
	if name := sealedWith(); name != "k2" {
		t.Fatalf("after rotation the Secret is encrypted with %q, want k2", name)
	}
	stop(p)

	p = serve(k2)
	readyz(t, p, api, 200)
	if got, err := readSecret(); err != nil || got != value {
		t.Fatalf("with the new key alone: %q %v", got, err)
	}
	stop(p)

	p = serve(encryption.NewKey("k3"))
	if code := p.wait(t); code != 1 || !strings.Contains(p.out.String(), `etcd holds values encrypted with key "k2", not in `+keyFile) {
		t.Fatalf("a server that lost the key in use: exit %d\n%s", code, p.out)
	}
}

// TestKeyCheckFailed: a key check stops the server only for a key it lacks or
// a corrupt check value; etcd losing a member or its leader while the check
// runs is tried again (a server started as a member went away stopped for it).
func TestKeyCheckFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("%w: etcd holds values encrypted with key %q", store.ErrSealed, "k1"), true},
		{fmt.Errorf("%w: key /keelson/encryption/keys/k1 holds no key check", store.ErrCorrupt), true},
		{fmt.Errorf("recording encryption key %q: %w", "k1", status.Error(codes.Unavailable, "error reading from server: connection reset by peer")), false},
		{fmt.Errorf("reading the encryption key checks: %w", rpctypes.ErrGRPCNoLeader), false},
		{fmt.Errorf("reading the encryption key checks: %w", context.DeadlineExceeded), false},
	} {
		if got := keyCheckFailed(tc.err); got != tc.want {
			t.Errorf("keyCheckFailed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
