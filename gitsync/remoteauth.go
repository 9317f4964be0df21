package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TokenUsername is the user name sent with a token file's token, over HTTP
// basic authentication: GitHub takes a token as the password of
// "x-access-token", GitLab takes a personal, project or group access token as
// the password of any user name. Neither takes a bearer token for Git over
// HTTPS in every case, so basic authentication is what works with both.
const TokenUsername = "x-access-token"

// scpLike matches Git's short ssh form, user@host:path.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)

// isRemoteURL tells whether repo names a remote repository rather than a
// path on this machine.
func isRemoteURL(repo string) bool {
	return strings.Contains(repo, "://") || scpLike.MatchString(repo)
}

// isSSH tells whether url is reached over ssh.
func isSSH(url string) bool {
	return strings.HasPrefix(url, "ssh://") || scpLike.MatchString(url)
}

// checkRemote refuses a remote configuration that cannot work, before any
// fetch: an unknown scheme, credentials that do not fit the scheme, ssh
// without a known_hosts file, credentials sent in clear over the network.
// Errors wrap ErrConfig.
func checkRemote(cfg Config) error {
	a, shown := cfg.Auth, redactURL(cfg.Repo)
	if cfg.CacheDir == "" {
		return fmt.Errorf("%w: remote repository %s needs a cache directory for its clone (keelson server keeps clones in <data-dir>/git)", ErrConfig, shown)
	}
	if isSSH(cfg.Repo) {
		if a.TokenFile != "" || a.BasicAuthFile != "" {
			return fmt.Errorf("%w: %s is an ssh URL: a token or basic-auth file does not apply; give a private key file (--git-ssh-key-file)", ErrConfig, shown)
		}
		if a.KnownHostsFile == "" {
			return fmt.Errorf("%w: ssh to %s without a known_hosts file (--git-known-hosts-file) is refused: the server's host key could not be checked (get it with ssh-keyscan and compare it with the one the host publishes)", ErrConfig, shown)
		}
		if a.SSHKeyFile == "" {
			return fmt.Errorf("%w: ssh to %s needs a private key file that the server accepts (--git-ssh-key-file)", ErrConfig, shown)
		}
		for _, f := range []string{a.KnownHostsFile, a.SSHKeyFile} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("%w: %v", ErrConfig, err)
			}
		}
		return nil
	}
	u, err := url.Parse(cfg.Repo)
	if err != nil {
		return fmt.Errorf("%w: repository URL %s: %v", ErrConfig, shown, err)
	}
	if a.SSHKeyFile != "" || a.KnownHostsFile != "" {
		return fmt.Errorf("%w: %s is not an ssh URL: the ssh key and known_hosts files do not apply", ErrConfig, shown)
	}
	if a.TokenFile != "" && a.BasicAuthFile != "" {
		return fmt.Errorf("%w: give a token file or a basic-auth file, not both", ErrConfig)
	}
	creds := a.TokenFile != "" || a.BasicAuthFile != "" || u.User != nil
	switch u.Scheme {
	case "https":
	case "http":
		if creds && !isLoopback(u.Hostname()) {
			return fmt.Errorf("%w: %s would send credentials in clear: use https", ErrConfig, shown)
		}
	case "file":
		if creds {
			return fmt.Errorf("%w: %s is a file URL: credentials do not apply", ErrConfig, shown)
		}
	default:
		return fmt.Errorf("%w: repository URL %s: scheme %q is not supported (https, http, ssh, file, or user@host:path)", ErrConfig, shown, u.Scheme)
	}
	for _, f := range []string{a.TokenFile, a.BasicAuthFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authMethod reads the credentials from their files, afresh at every fetch
// so that a rotated token or key is used at once. The secrets never appear in
// errors.
func (g *RemoteGit) authMethod() (transport.AuthMethod, error) {
	a := g.auth
	switch {
	case a.TokenFile != "":
		tok, err := readSecret(a.TokenFile)
		if err != nil {
			return nil, err
		}
		return &githttp.BasicAuth{Username: TokenUsername, Password: tok}, nil
	case a.BasicAuthFile != "":
		s, err := readSecret(a.BasicAuthFile)
		if err != nil {
			return nil, err
		}
		user, pass, ok := strings.Cut(s, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%w: basic-auth file %s: want one line username:password", ErrFetch, a.BasicAuthFile)
		}
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	case a.SSHKeyFile != "":
		return g.sshAuth()
	}
	return nil, nil
}

func (g *RemoteGit) sshAuth() (transport.AuthMethod, error) {
	a := g.auth
	ep, err := transport.NewEndpoint(g.url)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, redactURL(g.url), err)
	}
	user := ep.User
	if user == "" {
		user = "git"
	}
	pem, err := os.ReadFile(a.SSHKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: ssh key file: %v", ErrFetch, err)
	}
	keys, err := gitssh.NewPublicKeys(user, pem, "")
	if err != nil {
		return nil, fmt.Errorf("%w: ssh key file %s: %v (keys with a passphrase are not supported)", ErrFetch, a.SSHKeyFile, err)
	}
	if _, err := os.Stat(a.KnownHostsFile); err != nil {
		return nil, fmt.Errorf("%w: known_hosts file: %v", ErrFetch, err)
	}
	db, err := gitssh.NewKnownHostsDb(a.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("%w: known_hosts file %s: %v", ErrFetch, a.KnownHostsFile, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	// Offer only the key types known_hosts holds for the host, so that the
	// server shows one that can be checked.
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port)))
	return keys, nil
}

func readSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: credentials file: %v", ErrFetch, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%w: credentials file %s is empty", ErrFetch, file)
	}
	return s, nil
}

// fetchError says why talking to the remote failed. A failure of a fetch that
// is neither the remote's nor the network's is the clone's: a damagedError.
func (g *RemoteGit) fetchError(ctx context.Context, op string, err error) error {
	where := redactURL(g.url)
	var keyErr *knownhosts.KeyError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %s %s: %v", ErrFetch, op, where, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s %s: no answer in time", ErrFetch, op, where)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod), strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%w: %s %s: authentication refused (%s): check the token, basic-auth or ssh key file", ErrFetch, op, where, oneLine(err))
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		return fmt.Errorf("%w: %s %s: the server's host key is not in known_hosts file %s: refused", ErrFetch, op, where, g.auth.KnownHostsFile)
	case errors.As(err, &keyErr):
		return fmt.Errorf("%w: %s %s: the server's host key differs from the one in known_hosts file %s: refused (a replaced server, or someone in between)", ErrFetch, op, where, g.auth.KnownHostsFile)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%w: %s %s: repository not found (or not readable with these credentials)", ErrFetch, op, where)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%w: %s %s: the repository is empty", ErrFetch, op, where)
	case remoteFault(err) || op != "fetch":
		return fmt.Errorf("%w: %s %s: cannot reach the repository: %s", ErrFetch, op, where, oneLine(err))
	}
	return &damagedError{fmt.Errorf("%s %s: %w", op, where, err)}
}

// oneLine is err's message without the line breaks some transports add.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// remoteFault tells whether err came from the network or the remote side.
func remoteFault(err error) bool {
	var netErr net.Error
	var urlErr *url.Error
	var unexpected *plumbing.UnexpectedError
	var permanent *plumbing.PermanentError
	return errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.As(err, &unexpected) ||
		errors.As(err, &permanent) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "ssh: ") || strings.Contains(err.Error(), "remote error")
}

// redactURL hides a password written in a URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return s
}
