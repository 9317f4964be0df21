package gitsync

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Notifier is implemented by sources that can tell when they may have moved,
// so that a loop syncs at once instead of at its next poll. Polling stays on:
// a missed event only delays a sync to the next poll.
type Notifier interface {
	// Notify calls changed, from another goroutine, whenever the source may
	// have changed, until ctx is done. It returns once watching has started.
	// Errors wrap ErrFetch.
	Notify(ctx context.Context, changed func()) error
}

// Notify watches the repository's refs: HEAD and packed-refs in the Git
// directory, and every folder under refs/. A commit, a reset or a fetch moves
// a ref by renaming a file there.
func (g *LocalGit) Notify(ctx context.Context, changed func()) error {
	gitDir := filepath.Join(g.path, ".git")
	if info, err := os.Stat(gitDir); err != nil || !info.IsDir() {
		gitDir = g.path // a bare repository
	}
	return watchTree(ctx, []string{gitDir}, filepath.Join(gitDir, "refs"), changed, func(string) bool { return false })
}

// Notify watches every folder of the directory except hidden ones.
func (d *Dir) Notify(ctx context.Context, changed func()) error {
	return watchTree(ctx, nil, d.root, changed, func(name string) bool { return strings.HasPrefix(name, ".") })
}

// settle is how long a burst of events must be quiet before a sync: a ref or
// a file written in several steps (go-git truncates and rewrites refs, editors
// save through temporary files) is then read whole, not half written.
const settle = 20 * time.Millisecond

// watchTree watches the folders dirs, and root with every folder under it
// (skipping those skip names, and adding folders created later), calling
// changed on every event.
func watchTree(ctx context.Context, dirs []string, root string, changed func(), skip func(name string) bool) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%w: watch %s: %v", ErrFetch, root, err)
	}
	addTree := func(top string) error {
		return filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return err
			}
			if p != top && skip(e.Name()) {
				return filepath.SkipDir
			}
			return w.Add(p)
		})
	}
	for _, d := range dirs {
		err = w.Add(d)
		if err != nil {
			break
		}
	}
	if err == nil {
		err = addTree(root)
	}
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: watch %s: %v", ErrFetch, root, err)
	}
	go func() {
		defer w.Close()
		quiet := time.NewTimer(time.Hour)
		quiet.Stop()
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-quiet.C:
				changed()
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) && strings.HasPrefix(ev.Name, root) && !skip(filepath.Base(ev.Name)) {
					if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
						_ = addTree(ev.Name) // a folder that vanished again needs no watch
					}
				}
				quiet.Reset(settle)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				changed() // an overflow lost events: look now
			}
		}
	}()
	return nil
}
