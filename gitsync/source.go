package gitsync

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

var (
	// ErrFetch marks a source that could not be read: a missing repository,
	// an unknown ref, an unreadable directory. The cluster is left as it is.
	ErrFetch = errors.New("gitsync: fetch failed")
	// ErrVerify marks a commit that is not signed by one of the keys a sync
	// trusts (Config.VerifyKeysFile): unsigned, signed by an unknown key, or
	// with a signature that does not match. Nothing of it is applied.
	ErrVerify = errors.New("gitsync: commit verification failed")
	// ErrInvalid marks a revision with invalid manifests, duplicates, or objects
	// another source owns; nothing of it was applied. errors.As with a
	// *schema.ErrorList (or schema.ErrorList) gives every problem with file:line.
	ErrInvalid = errors.New("gitsync: revision is invalid")
	// ErrApply marks a revision that was valid but could not be written to the
	// store; the next sync retries it.
	ErrApply = errors.New("gitsync: apply failed")

	// ErrDecrypt: a file of the revision is encrypted with sops and cannot
	// be decrypted (no key opens it, or it was changed without the key);
	// nothing of the revision is applied.
	ErrDecrypt = errors.New("gitsync: decryption failed")
)

// Revision names one state of a source.
type Revision struct {
	// ID is the commit hash for Git, "sha256:<hex>" of the files for a plain
	// directory. Required.
	ID string
	// FromGit is false for a plain directory, whose ID is a content hash that
	// no commit carries.
	FromGit bool
	// Message, Author and Time describe the commit; empty for a directory.
	Message string
	Author  string
	Time    time.Time
}

// Short returns the ID cut to 12 characters, for messages.
func (r Revision) Short() string {
	if len(r.ID) > 12 {
		return r.ID[:12]
	}
	return r.ID
}

// Source is where desired state comes from: a Git repository or a directory.
// Implementations are used by one sync loop at a time.
type Source interface {
	// Resolve returns the revision the source points at now (the commit of
	// its ref, the hash of its files). It is called at every poll and must be
	// cheap when nothing changed. Errors wrap ErrFetch.
	Resolve(ctx context.Context) (Revision, error)
	// Files returns the whole tree of rev, read-only; paths inside are
	// slash-separated and relative to the repository root (or directory).
	// Errors wrap ErrFetch, or ErrVerify when the source verifies commits
	// and rev's commit is not signed by a trusted key.
	Files(ctx context.Context, rev Revision) (fs.FS, error)
	// String describes the source for status and logs (path and ref).
	String() string
}
