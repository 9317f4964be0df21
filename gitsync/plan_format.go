package gitsync

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the plan as indented JSON, for tools.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}

// ANSI colours of the text format.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// textWriter writes the text format, with or without colour.
type textWriter struct {
	w     io.Writer
	color bool
	err   error
}

func (t *textWriter) printf(c, format string, args ...any) {
	if t.err != nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	if t.color && c != "" {
		s = c + s + reset
	}
	_, t.err = io.WriteString(t.w, s)
}

// against says what head is compared with.
func (p *Plan) against() string {
	if p.Base != nil {
		return "base " + p.Base.Short()
	}
	return "the cluster at " + p.Cluster
}

func (p *Plan) summary() string {
	s := fmt.Sprintf("%d to create, %d to change, %d to delete, %d unchanged", p.Created, p.Changed, p.Deleted, p.Unchanged)
	if p.UntouchedFiles > 0 {
		s += fmt.Sprintf(" (%d of them in %d files not touched)", p.UntouchedObjects, p.UntouchedFiles)
	}
	return s
}

var actionMark = map[Action]string{Create: "+", Update: "~", Delete: "-"}
var actionColor = map[Action]string{Create: green, Update: yellow, Delete: red}
var actionWord = map[Action]string{Create: "created", Update: "changed", Delete: "deleted"}

// WriteText writes the plan for a terminal: the summary, errors and risks,
// then each object with what the cluster would do and the diff of changed
// objects. color adds ANSI colours.
func (p *Plan) WriteText(w io.Writer, color bool) error {
	t := &textWriter{w: w, color: color}
	where := ""
	if p.Path != "" {
		where = ", path " + p.Path
	}
	t.printf(bold, "Plan: head %s against %s%s\n", p.Head.Short(), p.against(), where)
	t.printf("", "%s\n", p.summary())
	if len(p.Errors) > 0 {
		t.printf(red+bold, "\nInvalid: %d problems in head\n", len(p.Errors))
		for _, e := range p.Errors {
			t.printf(red, "  %s\n", e)
		}
	}
	if len(p.Risks) > 0 {
		t.printf(bold, "\nRisks:\n")
		for _, r := range p.Risks {
			c := yellow
			if r.Level == RiskError {
				c = red
			}
			t.printf(c, "  %-7s %s: %s\n", strings.ToUpper(string(r.Level)), r.Object, r.Message)
		}
	}
	if len(p.Autoscaled) > 0 {
		t.printf(bold, "\nAutoscaled: ")
		t.printf("", "replicas follow their autoscaler, not Git (Git's spec.replicas only sets the first count):\n")
		for _, a := range p.Autoscaled {
			t.printf("", "  %s\n", a)
		}
	}
	t.order(p.Order)
	if p.Scheduling != nil {
		c := ""
		if p.Scheduling.Pending > 0 {
			c = yellow
		}
		t.printf(bold, "\nScheduling: ")
		t.printf(c, "%s\n", p.Scheduling)
	}
	for _, o := range p.Objects {
		t.printf(actionColor[o.Action], "\n%s %s", actionMark[o.Action], o.Title())
		if o.Origin != "" && o.RenderedBy != "" {
			t.printf("", "  (%s, rendered by %s)", o.Origin, o.RenderedBy)
		} else if o.Origin != "" {
			t.printf("", "  (%s)", o.Origin)
		}
		t.printf("", "\n")
		for _, e := range o.Effects {
			t.printf(cyan, "    %s\n", e)
		}
		if k := o.SecretKeys; k != nil && o.Action == Update {
			t.printf("", "    %s%s\n", k, encryptedNote(o))
		}
		if o.Action == Update {
			t.diff(o.Diff)
		}
	}
	return t.err
}

func (t *textWriter) diff(d string) {
	for _, line := range strings.SplitAfter(d, "\n") {
		if line == "" {
			continue
		}
		c := ""
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			continue
		case strings.HasPrefix(line, "@@"):
			c = cyan
		case strings.HasPrefix(line, "+"):
			c = green
		case strings.HasPrefix(line, "-"):
			c = red
		}
		t.printf(c, "    %s", line)
	}
}

// encryptedNote tells a reader that a Secret's values are encrypted in Git.
func encryptedNote(o *PlannedObject) string {
	if o.Encrypted {
		return " (encrypted with sops in Git)"
	}
	return ""
}

// String lists the keys whose values changed.
func (k *SecretKeys) String() string {
	var parts []string
	for _, g := range []struct {
		what string
		keys []string
	}{{"added", k.Added}, {"removed", k.Removed}, {"changed", k.Changed}, {"not readable, same size", k.Unverified}} {
		if len(g.keys) > 0 {
			parts = append(parts, g.what+": "+strings.Join(g.keys, ", "))
		}
	}
	if len(parts) == 0 {
		return "secret values unchanged"
	}
	return "secret keys " + strings.Join(parts, "; ")
}
