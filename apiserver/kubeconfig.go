package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminUser is the user of the token keelson makes on first start when no
// token file is given.
const AdminUser = "admin"

// EnsureTokenFile creates a token file at path holding one admin token (group
// system:masters) unless a file is there already.
func EnsureTokenFile(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	line := fmt.Sprintf("# token,user,uid,\"groups\" — the kube-apiserver token file format\n%s,%s,%s,\"%s\"\n", hex.EncodeToString(b), AdminUser, AdminUser, GroupMasters)
	return os.WriteFile(path, []byte(line), 0o600)
}

// TokenFor returns the first token in the file for a user.
func (t *Tokens) TokenFor(user string) (string, bool) {
	for tok, u := range t.users {
		if u.Name == user {
			return tok, true
		}
	}
	return "", false
}

// Kubeconfig returns a kubeconfig for server with a bearer token; caPEM is the
// CA to trust, empty for plain HTTP.
func Kubeconfig(server string, caPEM []byte, user, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["keelson"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["keelson"] = &clientcmdapi.Context{Cluster: "keelson", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "keelson"
	return clientcmd.Write(*cfg)
}
