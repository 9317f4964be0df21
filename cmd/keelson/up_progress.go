package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// The steps of keelson up's progress display, in the order it shows them.
const (
	stepEtcd = iota
	stepContainerd
	stepNode
	stepSync
	stepPods
	stepServices
	numSteps
)

// progress is what keelson up shows while it comes up and runs: on a
// terminal, a few lines redrawn in place; otherwise one log line per change.
type progress struct {
	mu      sync.Mutex
	out     io.Writer // the terminal; nil logs instead
	log     *slog.Logger
	header  string
	steps   [numSteps]step
	hints   []string
	problem string
	drawn   int // lines drawn last time, to move back over
	width   int // of the terminal, when known: a wrapped line would break the redraw
}

type step struct {
	text string
	done bool
}

func newProgress(tty io.Writer, log *slog.Logger, header string) *progress {
	p := &progress{out: tty, log: log.With("component", "up"), header: header}
	p.steps[stepEtcd].text = "etcd starting"
	p.steps[stepContainerd].text = "containerd starting"
	p.steps[stepNode].text = "node registering"
	p.steps[stepSync].text = "waiting for the first sync"
	p.steps[stepPods].text = "no pods yet"
	p.steps[stepServices].text = "no services yet"
	return p
}

// set changes one step's line; an unchanged line draws and logs nothing.
func (p *progress) set(i int, done bool, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	p.mu.Lock()
	if p.steps[i] == (step{text, done}) {
		p.mu.Unlock()
		return
	}
	p.steps[i] = step{text, done}
	if p.out != nil {
		p.draw()
	}
	p.mu.Unlock()
	p.log.Info(text) // outside mu: the log's handler may call setProblem
}

// setHints sets the lines shown under the steps: how to look at the cluster.
func (p *progress) setHints(lines []string) {
	p.mu.Lock()
	p.hints = lines
	if p.out != nil {
		p.draw()
	}
	p.mu.Unlock()
	for _, l := range lines {
		p.log.Info(strings.TrimSpace(l))
	}
}

// setProblem shows the last warning or error of the log on the terminal.
func (p *progress) setProblem(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil || p.problem == msg {
		return
	}
	p.problem = msg
	p.draw()
}

// lines is what the terminal shows.
func (p *progress) lines() []string {
	out := []string{p.header}
	for _, s := range p.steps {
		mark := "…"
		if s.done {
			mark = "✓"
		}
		out = append(out, "  "+mark+" "+s.text)
	}
	if p.problem != "" {
		out = append(out, "  ! "+p.problem)
	}
	return append(out, p.hints...)
}

// draw moves the cursor back over the last drawing and writes the lines
// again, each cleared first. Called with mu held.
func (p *progress) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	lines := p.lines()
	for _, l := range lines {
		if r := []rune(l); p.width > 1 && len(r) >= p.width {
			l = string(r[:p.width-2]) + "…"
		}
		b.WriteString("\r\x1b[2K" + l + "\n")
	}
	for range p.drawn - len(lines) {
		b.WriteString("\r\x1b[2K\n") // lines a shorter drawing no longer covers
	}
	p.drawn = max(p.drawn, len(lines))
	io.WriteString(p.out, b.String())
}

// problemHandler passes records on and shows warnings and errors on the
// progress display, whose full log goes to a file.
type problemHandler struct {
	slog.Handler
	p *progress
}

func (h problemHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				msg += ": " + a.Value.String()
			}
			return true
		})
		h.p.setProblem(firstLineOf(msg, 160))
	}
	return h.Handler.Handle(ctx, r)
}

func (h problemHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return problemHandler{h.Handler.WithAttrs(as), h.p}
}

func (h problemHandler) WithGroup(name string) slog.Handler {
	return problemHandler{h.Handler.WithGroup(name), h.p}
}

func firstLineOf(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
