// Package encryption seals the values the store keeps of Secrets before they
// reach etcd, so that etcd's files, its snapshots and anyone who reads etcd
// directly see ciphertext only.
//
// Keys live in a file the servers hold (--encryption-key-file, by default
// <data-dir>/encryption-keys.yaml, made on a first start with an embedded
// etcd):
//
//	keys:
//	- name: k-20261204
//	  secret: <32 random bytes, base64>
//	- name: k-20260101
//	  secret: <…>
//
// The first key seals every value written; every key opens. A key is rotated
// by putting a new one first: the leading server then seals again, in the
// background, every value sealed under another key, after which the old key
// can leave the file.
//
// A sealed value is
//
//	keelson:enc:xchacha20poly1305:v1:<key name>:<24-byte nonce><ciphertext>
//
// XChaCha20-Poly1305 with a random nonce per value, and the etcd key as
// additional data, so a value copied under another key does not open. Values
// without the prefix are read as they are: a cluster that turns encryption on
// reads what it wrote before, and the rotation seals it.
package encryption
