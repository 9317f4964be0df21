package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// ruleVersion is part of every rule's digest: changing how a rule is built
// changes it, so that an agent of a newer keelson rewrites the rules an
// older one left instead of trusting them.
const ruleVersion = "k1"

// digestPrefix starts the comment each rule carries; what follows is the
// digest of the rule's text.
const digestPrefix = "keelson:"

// icmpPortUnreachable is ICMP's "port unreachable" code, which a client's
// kernel turns into "connection refused".
const icmpPortUnreachable = 3

// masqMark is the packet mark bit that asks the postrouting chain to
// masquerade a connection's first packet.
const masqMark = 0x4000

var protoNumbers = map[corev1.Protocol]uint8{
	corev1.ProtocolTCP:  unix.IPPROTO_TCP,
	corev1.ProtocolUDP:  unix.IPPROTO_UDP,
	corev1.ProtocolSCTP: unix.IPPROTO_SCTP,
}

// rule is a rule as it should be: its expressions and a canonical text in
// nft's syntax, whose digest the rule carries in its comment so that a rule
// found in the kernel can be compared with the wanted one exactly and
// cheaply.
type rule struct {
	exprs []expr.Any
	text  []string
}

// String returns the rule in nft's syntax, for logs and test failures.
func (r *rule) String() string { return strings.Join(r.text, " ") }

// digest is what the rule's comment holds.
func (r *rule) digest() string {
	sum := sha256.Sum256([]byte(ruleVersion + " " + r.String()))
	return digestPrefix + hex.EncodeToString(sum[:8])
}

// userData is the rule's comment, in the TLV form nft reads and prints.
func (r *rule) userData() []byte {
	return userdata.AppendString(nil, userdata.TypeComment, r.digest())
}

// digestOf reads the digest back from a rule found in the kernel. It reads
// the userdata TLVs itself: userdata.GetString indexes past the end of
// malformed data, and a rule someone else put in the table must not crash
// the agent.
func digestOf(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := userdata.Type(ud[0]), int(ud[1])
		if len(ud) < 2+n {
			return ""
		}
		if typ == userdata.TypeComment {
			return strings.TrimSuffix(string(ud[2:2+n]), "\x00")
		}
		ud = ud[2+n:]
	}
	return ""
}

func (r *rule) add(text string, e ...expr.Any) *rule {
	r.text = append(r.text, text)
	r.exprs = append(r.exprs, e...)
	return r
}

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

func be16(v uint16) []byte { return binaryutil.BigEndian.PutUint16(v) }

func native32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// Registers: the 16-byte register 1 and the 4-byte registers 9 and 10 that
// follow its first word, which is how a concatenation is laid out.
const (
	reg1  = 1
	reg2  = 2
	reg9  = 9
	reg10 = 10
)

func (r *rule) daddr(a netip.Addr) *rule {
	return r.add("ip daddr "+a.String(),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ip4(a)})
}

func (r *rule) saddr(a netip.Addr) *rule {
	return r.add("ip saddr "+a.String(),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ip4(a)})
}

// addrInSet matches the source (or destination) address against a named
// set, or its absence when invert.
func (r *rule) addrInSet(field string, set string, invert bool) *rule {
	off := uint32(12)
	if field == "daddr" {
		off = 16
	}
	op := ""
	if invert {
		op = "!= "
	}
	return r.add(fmt.Sprintf("ip %s %s@%s", field, op, set),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Lookup{SourceRegister: reg1, SetName: set, Invert: invert})
}

func (r *rule) l4proto(p corev1.Protocol) *rule {
	return r.add("meta l4proto "+strings.ToLower(string(p)),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNumbers[p]}})
}

func (r *rule) dport(port uint16) *rule {
	return r.add(fmt.Sprintf("th dport %d", port),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: be16(port)})
}

// fibLocal matches packets whose source (or destination) address is one of
// this host's.
func (r *rule) fibLocal(field string) *rule {
	return r.add("fib "+field+" type local",
		&expr.Fib{Register: reg1, ResultADDRTYPE: true, FlagSADDR: field == "saddr", FlagDADDR: field == "daddr"},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: native32(unix.RTN_LOCAL)})
}

// notLoopback keeps 127.0.0.0/8 out: node ports answer on the node's
// addresses, not on localhost.
func (r *rule) notLoopback() *rule {
	return r.add("ip daddr != 127.0.0.0/8",
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{127, 0, 0, 0}})
}

func (r *rule) ctStateNew() *rule {
	return r.add("ct state new",
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: native32(0)})
}

// serviceVmap looks up "daddr . l4proto . dport" in a verdict map.
func (r *rule) serviceVmap(m string) *rule {
	return r.add("ip daddr . meta l4proto . th dport vmap @"+m,
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg9},
		&expr.Payload{DestRegister: reg10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: m, IsDestRegSet: true})
}

// nodePortVmap looks up "l4proto . dport" in a verdict map.
func (r *rule) nodePortVmap(m string) *rule {
	return r.add("meta l4proto . th dport vmap @"+m,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Payload{DestRegister: reg9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: m, IsDestRegSet: true})
}

// pick spreads connections evenly over n endpoints: numgen random mod n
// into a named verdict map whose keys 0..n-1 lead to the endpoint chains.
// The map is named, not anonymous, so that its elements can be written in
// several messages (a netlink attribute holds 64 KiB, a few hundred
// endpoints) and changed one by one.
func (r *rule) pick(m string, n int) *rule {
	return r.add(fmt.Sprintf("numgen random mod %d vmap @%s", n, m),
		&expr.Numgen{Register: reg1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		// numgen writes in host byte order, the map's keys are in network
		// order, as nft reads them.
		&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Lookup{SourceRegister: reg1, SetName: m, IsDestRegSet: true})
}

func (r *rule) markMasq() *rule {
	return r.add("meta mark set meta mark | 0x4000",
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(^uint32(masqMark)), Xor: native32(masqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1})
}

func (r *rule) returnUnmarked() *rule {
	return r.add("meta mark & 0x4000 == 0 return",
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(masqMark), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: native32(0)},
		&expr.Verdict{Kind: expr.VerdictReturn})
}

func (r *rule) clearMark() *rule {
	return r.add("meta mark set meta mark ^ 0x4000",
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(^uint32(0)), Xor: native32(masqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1})
}

func (r *rule) masquerade(fullyRandom bool) *rule {
	text := "masquerade"
	if fullyRandom {
		text += " fully-random"
	}
	return r.add(text, &expr.Masq{FullyRandom: fullyRandom})
}

// updateAffinity records the client's address in an endpoint's affinity set
// (the set's own timeout applies).
func (r *rule) updateAffinity(set string) *rule {
	return r.add("update @"+set+" { ip saddr }",
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Dynset{SrcRegKey: reg1, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE})
}

func (r *rule) dnat(to netip.AddrPort) *rule {
	return r.add("dnat ip to "+to.String(),
		&expr.Immediate{Register: reg1, Data: ip4(to.Addr())},
		&expr.Immediate{Register: reg2, Data: be16(to.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true})
}

func (r *rule) rejectTCPReset() *rule {
	return r.add("reject with tcp reset", &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
}

func (r *rule) rejectPortUnreachable() *rule {
	return r.add("reject with icmp port-unreachable", &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable})
}

func (r *rule) drop() *rule {
	return r.add("drop", &expr.Verdict{Kind: expr.VerdictDrop})
}

func (r *rule) jump(chain string) *rule {
	return r.add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

func (r *rule) gotoChain(chain string) *rule {
	return r.add("goto "+chain, &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain})
}

func newRule() *rule { return &rule{} }

// numgenKey is the key of entry i of a pick map.
func numgenKey(i int) []byte { return binaryutil.BigEndian.PutUint32(uint32(i)) }
