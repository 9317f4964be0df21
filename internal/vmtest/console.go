package vmtest

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bootedAt is when the payload started.
func (c *console) bootedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started
}

// console collects the VM's serial console and tells when the payload's
// exit line has come.
type console struct {
	marker string        // the prefix of the start and exit lines
	exited chan struct{} // closed once the exit line is complete
	end    error         // why the VM ended, when not after the exit line

	mu      sync.Mutex
	buf     bytes.Buffer
	started time.Time // when the start line came: the VM had booted
	closed  bool
}

func newConsole(marker string) *console {
	return &console{marker: marker, exited: make(chan struct{})}
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if c.started.IsZero() && bytes.Contains(c.buf.Bytes(), []byte(c.marker+" start")) {
		c.started = time.Now()
	}
	if !c.closed {
		if i := bytes.Index(c.buf.Bytes(), []byte(c.marker+" exit ")); i >= 0 && bytes.IndexByte(c.buf.Bytes()[i:], '\n') >= 0 {
			c.closed = true
			close(c.exited)
		}
	}
	return len(p), nil
}

// text is the console so far, with the serial line's CRLF as LF.
func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ReplaceAll(c.buf.String(), "\r\n", "\n")
}

// result returns the payload's output, between the start line and the exit
// line, and its exit code; ok is false when the exit line never came.
func (c *console) result() (output string, code int, ok bool) {
	text := c.text()
	exitPrefix := c.marker + " exit "
	end := strings.LastIndex(text, exitPrefix)
	if end < 0 {
		return "", 0, false
	}
	codeLine, _, _ := strings.Cut(text[end+len(exitPrefix):], "\n")
	code, err := strconv.Atoi(strings.TrimSpace(codeLine))
	if err != nil {
		return "", 0, false
	}
	startLine := c.marker + " start\n"
	start := strings.Index(text, startLine)
	if start < 0 || start > end {
		return "", 0, false
	}
	return text[start+len(startLine) : end], code, true
}

// tail is the last n bytes of the console.
func (c *console) tail(n int) string {
	text := c.text()
	if len(text) > n {
		text = "…" + text[len(text)-n:]
	}
	return text
}
