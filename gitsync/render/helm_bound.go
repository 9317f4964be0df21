package render

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// Go templates cannot be cancelled, and Helm's engine writes each
// template into a buffer of its own with no bound: its only limit is
// include's nesting (1000 deep), its loader's the size of an archive (100
// MiB, 5 MiB a file), which keelson applies to chart folders too. So that
// a chart that loops for ever or renders a gigabyte ends as an error:
//
//   - the render runs in a goroutine and the engine stops waiting at the
//     context's end;
//   - every range body and every defined template (what include recurses
//     through) starts with a call of stepFunc, which fails once the
//     context ended, or once the literal text the loops wrote passes the
//     output bound: the goroutine then ends at its next step;
//   - the functions that make large values from a small template (until,
//     untilStep, seq, repeat, indent, nindent, printf's widths, the random
//     strings) refuse sizes past the bounds;
//   - the output is measured when the render returns.
//
// What keeps running past the context's end is one function call already
// under way (a regular expression over a large value, a key generated)
// and templates run by tpl from a value, which are not instrumented:
// they end on their own, and their output is then thrown away.

// stepFunc is the instrumenting function's name in templates.
const stepFunc = "keelsonRenderStep"

// maxListItems bounds the lists until and untilStep make.
const maxListItems = 1 << 20

// renderGuard is the state of one render's bounds.
type renderGuard struct {
	done      <-chan struct{}
	ctxErr    func() error
	maxOutput int64
	written   int64
}

func newRenderGuard(ctx context.Context, maxOutput int64) *renderGuard {
	return &renderGuard{done: ctx.Done(), ctxErr: ctx.Err, maxOutput: maxOutput}
}

// step is called at the start of each range iteration and each defined
// template, with the length of the literal text it writes for sure.
func (g *renderGuard) step(n int) (string, error) {
	select {
	case <-g.done:
		return "", fmt.Errorf("stopped: %w", g.ctxErr())
	default:
	}
	if g.written += int64(n); g.written > g.maxOutput {
		return "", fmt.Errorf("the chart's loops render more than %d bytes, keelson's bound", g.maxOutput)
	}
	return "", nil
}

func (g *renderGuard) funcs() map[string]any {
	return map[string]any{
		stepFunc:    g.step,
		"until":     g.until,
		"untilStep": g.untilStep,
		"repeat":    g.repeat,
		"indent":    g.indent,
		"nindent":   g.nindent,
		"seq":       g.seq,
		"printf":    g.printf,
		// Random strings of a given length.
		"randAlpha":    g.sized("randAlpha"),
		"randAlphaNum": g.sized("randAlphaNum"),
		"randAscii":    g.sized("randAscii"),
		"randNumeric":  g.sized("randNumeric"),
	}
}

// sprigFuncs are the functions the guards call once their bounds hold.
var sprigFuncs = sprig.TxtFuncMap()

// sized bounds a sprig function making a string of its argument's length.
func (g *renderGuard) sized(name string) func(int) (string, error) {
	f, _ := sprigFuncs[name].(func(int) string)
	return func(n int) (string, error) {
		if f == nil {
			return "", fmt.Errorf("%s is not available", name)
		}
		if int64(n) > g.maxOutput {
			return "", fmt.Errorf("%s %d: more than %d bytes, keelson's bound", name, n, g.maxOutput)
		}
		return f(n), nil
	}
}

// seq bounds sprig's seq by the numbers it writes.
func (g *renderGuard) seq(params ...int) (string, error) {
	start, step, end := 1, 1, 0
	switch len(params) {
	case 1:
		end = params[0]
	case 2:
		start, end = params[0], params[1]
	case 3:
		start, step, end = params[0], params[1], params[2]
	}
	if step == 0 {
		step = 1
	}
	if n := (max(start, end)-min(start, end))/max(step, -step) + 1; len(params) > 0 && n > maxListItems {
		return "", fmt.Errorf("seq %v: more than %d numbers, keelson's bound for a chart's lists", params, maxListItems)
	}
	f, _ := sprigFuncs["seq"].(func(...int) string)
	if f == nil {
		return "", fmt.Errorf("seq is not available")
	}
	return f(params...), nil
}

// printf refuses a width or precision past the output bound: fmt would
// pad to it, "%999999999d" writing a gigabyte.
func (g *renderGuard) printf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0
		for i++; i < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[i]) >= 0; i++ {
			switch c := format[i]; {
			case c >= '0' && c <= '9':
				if n = n*10 + int(c-'0'); int64(n) > g.maxOutput {
					return "", fmt.Errorf("printf %q: a width or precision past %d bytes, keelson's bound", format, g.maxOutput)
				}
			case c == '*':
				for _, a := range args {
					if v, ok := a.(int); ok && int64(v) > g.maxOutput {
						return "", fmt.Errorf("printf %q: a width or precision of %d, past keelson's bound of %d bytes", format, v, g.maxOutput)
					}
				}
			default:
				n = 0
			}
		}
	}
	return fmt.Sprintf(format, args...), nil
}

func (g *renderGuard) until(count int) ([]int, error) {
	if count < 0 {
		return g.untilStep(0, count, -1)
	}
	return g.untilStep(0, count, 1)
}

// untilStep counts from start towards stop (excluded) by step, as sprig's
// does, refusing more than maxListItems numbers.
func (g *renderGuard) untilStep(start, stop, step int) ([]int, error) {
	n := 0
	switch {
	case step > 0 && start < stop:
		n = (stop-start-1)/step + 1
	case step < 0 && start > stop:
		n = (start-stop-1)/(-step) + 1
	}
	if n > maxListItems {
		return nil, fmt.Errorf("untilStep %d %d %d: more than %d numbers, keelson's bound for a chart's lists", start, stop, step, maxListItems)
	}
	out := make([]int, 0, n)
	for i := start; len(out) < n; i += step {
		out = append(out, i)
	}
	return out, nil
}

func (g *renderGuard) repeat(count int, s string) (string, error) {
	if count > 0 && int64(count)*int64(len(s)) > g.maxOutput {
		return "", fmt.Errorf("repeat %d: more than %d bytes, keelson's bound", count, g.maxOutput)
	}
	return strings.Repeat(s, max(count, 0)), nil
}

func (g *renderGuard) indent(spaces int, v string) (string, error) {
	lines := int64(strings.Count(v, "\n") + 1)
	if spaces > 0 && int64(spaces)*lines > g.maxOutput {
		return "", fmt.Errorf("indent %d: more than %d bytes, keelson's bound", spaces, g.maxOutput)
	}
	pad := strings.Repeat(" ", max(spaces, 0))
	return pad + strings.ReplaceAll(v, "\n", "\n"+pad), nil
}

func (g *renderGuard) nindent(spaces int, v string) (string, error) {
	s, err := g.indent(spaces, v)
	return "\n" + s, err
}

// instrument adds the step calls to the templates of c and its
// dependencies. A template that does not parse is left as it is, for
// Helm to report.
func instrument(c *chart.Chart) {
	for _, f := range c.Templates {
		if out, ok := instrumentTemplate(f.Name, string(f.Data)); ok {
			f.Data = []byte(out)
		}
	}
	for _, d := range c.Dependencies() {
		instrument(d)
	}
}

// insertion is a step call to insert at a byte offset.
type insertion struct {
	pos  int
	cost int
}

// instrumentTemplate inserts a step call at the start of every range body
// and defined template of text. The calls write nothing, and are put
// where they change no trimming ("{{-" trims before the call as it did
// before the body), and on the same line, so that errors keep their lines.
func instrumentTemplate(name, text string) (string, bool) {
	tr := parse.New(name)
	tr.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := tr.Parse(text, "", "", trees); err != nil {
		return "", false
	}
	var ins []insertion
	for tname, t := range trees {
		if t.Root == nil {
			continue
		}
		if tname != name {
			ins = append(ins, insertion{int(t.Root.Pos), literalLen(t.Root)})
		}
		ins = collectRanges(t.Root, ins)
	}
	if len(ins) == 0 {
		return "", false
	}
	slices.SortFunc(ins, func(a, b insertion) int { return b.pos - a.pos })
	out := text
	for _, in := range ins {
		if in.pos < 0 || in.pos > len(out) {
			return "", false
		}
		call := fmt.Sprintf("{{%s %d}}", stepFunc, in.cost)
		if strings.HasPrefix(out[in.pos:], "{{- ") || strings.HasPrefix(out[in.pos:], "{{-\t") || strings.HasPrefix(out[in.pos:], "{{-\n") {
			call = fmt.Sprintf("{{- %s %d}}", stepFunc, in.cost)
		}
		out = out[:in.pos] + call + out[in.pos:]
	}
	return out, true
}

// collectRanges finds the range bodies below n.
func collectRanges(n parse.Node, ins []insertion) []insertion {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return ins
		}
		for _, c := range n.Nodes {
			ins = collectRanges(c, ins)
		}
	case *parse.RangeNode:
		if n.List != nil {
			ins = append(ins, insertion{int(n.List.Pos), literalLen(n.List)})
		}
		ins = collectRanges(n.List, ins)
		ins = collectRanges(n.ElseList, ins)
	case *parse.IfNode:
		ins = collectRanges(n.List, ins)
		ins = collectRanges(n.ElseList, ins)
	case *parse.WithNode:
		ins = collectRanges(n.List, ins)
		ins = collectRanges(n.ElseList, ins)
	}
	return ins
}

// literalLen is the length of the text l writes whatever its actions do:
// a lower bound of its output.
func literalLen(l *parse.ListNode) int {
	n := 0
	for _, c := range l.Nodes {
		if t, ok := c.(*parse.TextNode); ok {
			n += len(t.Text)
		}
	}
	return n
}
