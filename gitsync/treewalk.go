package gitsync

import (
	"context"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeFile is one entry of a tree that is not a folder, with its path from
// the root.
type treeFile struct {
	name  string
	entry object.TreeEntry
}

// treeCache keeps the entries of the folders of the last tree listed, by
// tree hash. A tree's hash is its content, so a commit that changes one file
// has the next listing read only the folders on that file's path: walking
// 2,000 folders read and inflated each folder's object from disk every time.
// Not safe for concurrent use.
type treeCache struct {
	entries map[plumbing.Hash][]object.TreeEntry
}

// list returns every entry of tree below its folders (files, symlinks,
// submodules), reading from repo only the folders not in the last listing.
func (c *treeCache) list(ctx context.Context, repo *git.Repository, tree *object.Tree) ([]treeFile, error) {
	next := make(map[plumbing.Hash][]object.TreeEntry, len(c.entries))
	next[tree.Hash] = tree.Entries
	var out []treeFile
	var walk func(dir string, entries []object.TreeEntry) error
	walk = func(dir string, entries []object.TreeEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name
			if dir != "" {
				name = dir + "/" + e.Name
			}
			if e.Mode != filemode.Dir {
				out = append(out, treeFile{name: name, entry: e})
				continue
			}
			sub, ok := next[e.Hash]
			if !ok {
				if sub, ok = c.entries[e.Hash]; !ok {
					t, err := repo.TreeObject(e.Hash)
					if err != nil {
						return err
					}
					sub = t.Entries
				}
				next[e.Hash] = sub
			}
			if err := walk(name, sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("", tree.Entries); err != nil {
		return nil, err
	}
	c.entries = next
	return out, nil
}
