package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
)

// failover sends each request to the API server that last answered; when that
// one cannot be reached (no connection, so nothing of the request was sent),
// it tries the others in turn and stays with the first that answers, as
// k3s' agent load balancer does. A watch cut by a dying server ends, and
// client-go's reflector watches again, through the next server.
//
// Each server is addressed by its own URL, so the TLS server name checked is
// that server's: every server's certificate must carry its own address, and
// all of them must be signed by the one CA the agent trusts.
type failover struct {
	next    http.RoundTripper
	servers []*url.URL
	log     *slog.Logger

	mu  sync.Mutex
	cur int
}

// parseServers checks the API URLs an agent is given.
func parseServers(servers []string) ([]*url.URL, error) {
	if len(servers) == 0 {
		return nil, errors.New("no API server URL")
	}
	out := make([]*url.URL, 0, len(servers))
	seen := map[string]bool{}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("API server URL %q: %w", s, err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("API server URL %q: want https://host:port (or http:// on loopback)", s)
		}
		if seen[u.Host] {
			return nil, fmt.Errorf("API server URL %q is given twice", s)
		}
		seen[u.Host] = true
		out = append(out, &url.URL{Scheme: u.Scheme, Host: u.Host})
	}
	return out, nil
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	first := f.cur
	f.mu.Unlock()
	var lastErr error
	for i := range f.servers {
		n := (first + i) % len(f.servers)
		r, err := f.to(req, f.servers[n], i > 0)
		if err != nil {
			return nil, err
		}
		resp, err := f.next.RoundTrip(r)
		if err == nil {
			if n != first {
				f.mu.Lock()
				f.cur = n
				f.mu.Unlock()
				f.log.Warn("API server unreachable: using another", "from", f.servers[first].Host, "to", f.servers[n].Host, "err", lastErr)
			}
			return resp, nil
		}
		if !unreachable(err) || req.Context().Err() != nil {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no API server reachable (%d tried): %w", len(f.servers), lastErr)
}

// to returns req aimed at server; a retry gets a fresh body.
func (f *failover) to(req *http.Request, server *url.URL, retry bool) (*http.Request, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = server.Scheme, server.Host, ""
	if retry && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("API request cannot be sent again to another server: its body cannot be read twice")
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

// unreachable reports whether err means the server could not be connected
// to at all, so the request was not sent and may go to another server.
func unreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
