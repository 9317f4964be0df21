package clusterdns

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAnswerFromTheQueriedAddress: a server bound to every address answers
// from the address each query went to, not from the one the routing table
// would pick for the client. The query goes to 127.0.0.2, whose answer the
// kernel would otherwise send from 127.0.0.1; the client's connected socket
// takes only an answer from where it asked, as a pod's resolver does after
// the node proxy rewrote the DNS service's cluster IP.
func TestAnswerFromTheQueriedAddress(t *testing.T) {
	for _, listen := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			f := startServer(t, Config{Addr: listen})
			_, port, err := net.SplitHostPort(f.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, server := range []string{"127.0.0.1", "127.0.0.2", "127.1.2.3"} {
				q := new(dns.Msg)
				q.SetQuestion("cluster.local.", dns.TypeSOA)
				c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
				r, _, err := c.Exchange(q, net.JoinHostPort(server, port))
				if err != nil {
					t.Fatalf("ask %s: %v", server, err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Errorf("ask %s: %s", server, r)
				}
			}
		})
	}
}
