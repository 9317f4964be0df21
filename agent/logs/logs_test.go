package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	w.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	if err := w.Copy("stdout", strings.NewReader("one\ntwo\nthree")); err != nil {
		t.Fatal(err)
	}
	if err := w.Copy("stderr", strings.NewReader("oops\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), "2026-11-25T12:00:01Z stdout F one\n") || !strings.Contains(string(raw), " stdout P three\n") ||
		!strings.Contains(string(raw), " stderr F oops\n") {
		t.Fatalf("file:\n%s", raw)
	}
	cases := []struct {
		name string
		opts ReadOptions
		want string
	}{
		{"all", ReadOptions{}, "one\ntwo\nthreeoops\n"},
		{"tail", ReadOptions{TailLines: 2}, "threeoops\n"},
		{"since", ReadOptions{Since: time.Date(2026, 11, 25, 12, 0, 3, 0, time.UTC)}, "threeoops\n"},
		{"timestamps", ReadOptions{TailLines: 1, Timestamps: true}, "2026-11-25T12:00:04Z oops\n"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if err := Read(context.Background(), path, &out, tc.opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, out.String(), tc.want)
		}
	}
}

func TestLongLinesAreCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := Open(path, 1<<20, 2)
	long := strings.Repeat("x", maxLine+10)
	if err := w.Copy("stdout", strings.NewReader(long+"\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var out bytes.Buffer
	Read(context.Background(), path, &out, ReadOptions{})
	if out.String() != long+"\n" {
		t.Fatalf("a line over 16 KiB came back as %d bytes", out.Len())
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, 200, 3) // path, path.1, path.2
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := w.Copy("stdout", strings.NewReader(fmt.Sprintf("line %02d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatal("more rotated files kept than MaxFiles allows")
	}
	for _, f := range []string{path, path + ".1", path + ".2"} {
		if st, err := os.Stat(f); err != nil || st.Size() > 200 {
			t.Fatalf("%s: %v (size over the limit?)", f, err)
		}
	}
	var out bytes.Buffer
	Read(context.Background(), path, &out, ReadOptions{})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[len(lines)-1] != "line 39" {
		t.Fatalf("newest line %q", lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("rotated files read out of order: %q then %q", lines[i-1], lines[i])
		}
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := Open(path, 1<<20, 2)
	w.Copy("stdout", strings.NewReader("first\n"))
	done := make(chan struct{})
	pr, pw := ioPipe()
	go func() {
		Read(context.Background(), path, pw, ReadOptions{Follow: true, Done: done})
		pw.Close()
	}()
	w.Copy("stdout", strings.NewReader("second\n"))
	time.Sleep(300 * time.Millisecond)
	close(done)
	got, _ := readAll(pr)
	if got != "first\nsecond\n" {
		t.Fatalf("follow gave %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("2026-11-25T12:00:01Z stdout F hello\n"))
	f.Add([]byte("2026-11-25T12:00:01.123456789Z stderr P \n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err == nil && l.Stream == "" && len(bytes.SplitN(b, []byte(" "), 4)) < 3 {
			t.Fatalf("accepted %q", b)
		}
	})
}

// TestFollowEndsWhenClientGoes: a follower whose client goes away returns, so
// nothing is left reading the file.
func TestFollowEndsWhenClientGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := Open(path, 1<<20, 2)
	defer w.Close()
	w.Copy("stdout", strings.NewReader("line\n"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Read(ctx, path, io.Discard, ReadOptions{Follow: true, Done: make(chan struct{})}) }()
	time.Sleep(150 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a follower kept reading after its client went away")
	}
}

// TestDriverBinary: keelson-logger beside keelson is the logging binary
// when it is there and executable; otherwise keelson itself.
func TestDriverBinary(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "keelson")
	logger := filepath.Join(dir, LoggerName)
	if got := DriverBinary(self); got != self {
		t.Errorf("no logger beside keelson: %s, want keelson itself", got)
	}
	if err := os.WriteFile(logger, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := DriverBinary(self); got != self {
		t.Errorf("a logger that is not executable: %s, want keelson itself", got)
	}
	if err := os.Chmod(logger, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := DriverBinary(self); got != logger {
		t.Errorf("got %s, want %s", got, logger)
	}
}
