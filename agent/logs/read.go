package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadOptions are the kubelet's log options.
type ReadOptions struct {
	// TailLines keeps only the last lines; 0 keeps all, and a negative
	// value none (the API's tailLines=0).
	TailLines int64
	// Since drops lines older than it; zero keeps all.
	Since time.Time
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
	// Follow keeps reading new lines until ctx ends or Done closes.
	Follow bool
	// Done, when Follow, ends the read once the file stops growing after it is
	// closed (the container exited).
	Done <-chan struct{}
}

// Line is one parsed CRI log line.
type Line struct {
	Time    time.Time
	Stream  string
	Partial bool
	Content []byte
}

// Parse reads a CRI log line. Errors name what is wrong with it.
func Parse(b []byte) (Line, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	parts := bytes.SplitN(b, []byte(" "), 4)
	if len(parts) < 3 {
		return Line{}, fmt.Errorf("log line %q: want TIME STREAM TAG CONTENT", b)
	}
	t, err := time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return Line{}, fmt.Errorf("log line time: %w", err)
	}
	l := Line{Time: t, Stream: string(parts[1]), Partial: string(parts[2]) == "P"}
	if len(parts) == 4 {
		l.Content = parts[3]
	}
	return l, nil
}

// Read writes the log at path (with its rotated files, oldest first) to w as
// the container wrote it, following the options.
func Read(ctx context.Context, path string, w io.Writer, opts ReadOptions) error {
	var lines [][]byte
	keep := func(b []byte) {
		if opts.TailLines < 0 {
			return // tailLines=0: none of what is there, only what follows
		}
		if opts.TailLines > 0 && int64(len(lines)) == opts.TailLines {
			lines = lines[1:]
		}
		lines = append(lines, append([]byte(nil), b...))
	}
	files := rotated(path)
	var offset int64
	for i, f := range files {
		n, err := scan(f, 0, func(b []byte) { keep(b) })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if i == len(files)-1 {
			offset = n
		}
	}
	for _, b := range lines {
		if err := emit(w, b, opts); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	if f, ok := w.(interface{ Flush() }); ok {
		f.Flush()
	}
	for {
		n, err := scan(path, offset, func(b []byte) { _ = emit(w, b, opts) })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if f, ok := w.(interface{ Flush() }); ok && n != offset {
			f.Flush()
		}
		grew := n != offset
		offset = n
		select {
		case <-ctx.Done():
			return nil
		case <-opts.Done:
			if !grew {
				return nil
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rotated lists the log's files, oldest first.
func rotated(path string) []string {
	var out []string
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(name); err != nil {
			break
		}
		out = append([]string{name}, out...)
	}
	return append(out, path)
}

// scan calls f with each whole line from offset on and returns the offset
// after the last whole line.
func scan(path string, offset int64, f func([]byte)) (int64, error) {
	file, err := os.Open(path)
	if err != nil {
		return offset, err
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && st.Size() < offset {
		offset = 0 // rotated under us
	}
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	r := bufio.NewReaderSize(file, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		if err != nil {
			return offset, nil // a partial last line waits for its end
		}
		offset += int64(len(b))
		f(b)
	}
}

func emit(w io.Writer, raw []byte, opts ReadOptions) error {
	l, err := Parse(raw)
	if err != nil {
		return nil // a line keelson did not write: skipped, as the kubelet does
	}
	if !opts.Since.IsZero() && l.Time.Before(opts.Since) {
		return nil
	}
	var b bytes.Buffer
	if opts.Timestamps {
		b.WriteString(l.Time.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(l.Content)
	if !l.Partial {
		b.WriteByte('\n')
	}
	_, err = w.Write(b.Bytes())
	return err
}
