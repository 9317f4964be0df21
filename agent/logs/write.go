package logs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Defaults, as the kubelet's containerLogMaxSize and containerLogMaxFiles.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
	maxLine         = 16 << 10
)

// Writer appends CRI log lines to a file and rotates it by size: path.1 is the
// newest rotated file, path.<MaxFiles-1> the oldest kept. Safe for concurrent
// use by the stdout and stderr copiers.
type Writer struct {
	Path     string
	MaxSize  int64
	MaxFiles int
	now      func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (or creates) the log file for appending.
func Open(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxFiles < 1 {
		maxFiles = DefaultMaxFiles
	}
	w := &Writer{Path: path, MaxSize: maxSize, MaxFiles: maxFiles, now: time.Now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Copy reads r (one stream, "stdout" or "stderr") to its end, writing each
// line as a CRI log line.
func (w *Writer) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		full := err == nil
		if len(line) > 0 {
			if full {
				line = line[:len(line)-1]
			}
			tag := "P"
			if full {
				tag = "F"
			}
			if werr := w.line(stream, tag, line); werr != nil {
				return werr
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (w *Writer) line(stream, tag string, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := make([]byte, 0, len(content)+64)
	buf = w.now().UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, content...)
	buf = append(buf, '\n')
	if w.size+int64(len(buf)) > w.MaxSize && w.size > 0 {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(buf)
	w.size += int64(n)
	return err
}

// rotate shifts path.N to path.N+1, dropping the oldest, and starts a new file.
func (w *Writer) rotate() error {
	w.f.Close()
	for i := w.MaxFiles - 1; i >= 1; i-- {
		from := w.Path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", w.Path, i-1)
		}
		if i == w.MaxFiles-1 {
			os.Remove(fmt.Sprintf("%s.%d", w.Path, i))
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", w.Path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if w.MaxFiles == 1 {
		os.Remove(w.Path)
	}
	return w.open()
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
