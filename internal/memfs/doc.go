// Package memfs has the pieces of a read-only file held in memory, for the
// file systems that put generated or decrypted content where a revision's
// files are read.
package memfs
