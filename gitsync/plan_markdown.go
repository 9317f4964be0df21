package gitsync

import (
	"fmt"
	"io"
	"strings"
)

// markdownMaxObjects bounds the objects detailed in a markdown plan, so that
// a large change still fits in a pull-request comment (GitHub takes 65,536
// characters); the JSON output has them all.
const markdownMaxObjects = 100

// WriteMarkdown writes the plan as a pull-request comment: a summary table,
// the problems and risk flags, then one collapsible section per object with
// what the cluster would do and the diff.
func (p *Plan) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	errs, warns := 0, 0
	for _, r := range p.Risks {
		if r.Level == RiskError {
			errs++
		} else {
			warns++
		}
	}
	fmt.Fprintf(&b, "## keelson plan\n\nHead `%s` against %s", p.Head.Short(), mdAgainst(p))
	if p.Path != "" {
		fmt.Fprintf(&b, ", path `%s`", p.Path)
	}
	b.WriteString(".\n\n")
	b.WriteString("| Created | Changed | Deleted | Unchanged | Invalid | Risk errors | Risk warnings |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d |\n", p.Created, p.Changed, p.Deleted, p.Unchanged, len(p.Errors), errs, warns)
	if p.UntouchedFiles > 0 {
		fmt.Fprintf(&b, "\n%d manifest files are the same in base and head: their %d objects are unchanged and were not validated again.\n", p.UntouchedFiles, p.UntouchedObjects)
	}
	if len(p.Errors) > 0 {
		b.WriteString("\n### :x: Invalid: this head would not be applied\n\n")
		for _, e := range p.Errors {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(e.Error(), "`", "'"))
		}
	}
	if len(p.Risks) > 0 {
		b.WriteString("\n### Risks\n\n")
		for _, r := range p.Risks {
			icon := ":warning:"
			if r.Level == RiskError {
				icon = ":x:"
			}
			fmt.Fprintf(&b, "- %s **%s** `%s`: %s\n", icon, r.Level, r.Object, mdEscape(r.Message))
		}
	}
	if len(p.Autoscaled) > 0 {
		b.WriteString("\n### Autoscaled\n\nReplicas follow their autoscaler, not Git (Git's `spec.replicas` only sets the first count):\n\n")
		for _, a := range p.Autoscaled {
			fmt.Fprintf(&b, "- %s\n", mdEscape(a))
		}
	}
	writeOrderMarkdown(&b, p.Order)
	if s := p.Scheduling; s != nil {
		icon := ":white_check_mark:"
		if s.Pending > 0 {
			icon = ":warning:"
		}
		fmt.Fprintf(&b, "\n### Scheduling\n\n%s %s.\n", icon, mdEscape(s.String()))
	}
	if len(p.Objects) > 0 {
		b.WriteString("\n### Objects\n")
	}
	for i, o := range p.Objects {
		if i == markdownMaxObjects {
			fmt.Fprintf(&b, "\n… and %d more objects: run `keelson plan --format json` for all of them.\n", len(p.Objects)-i)
			break
		}
		writeMarkdownObject(&b, o)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdAgainst(p *Plan) string {
	if p.Base != nil {
		return fmt.Sprintf("base `%s`", p.Base.Short())
	}
	return fmt.Sprintf("the cluster at `%s`", p.Cluster)
}

func writeMarkdownObject(b *strings.Builder, o *PlannedObject) {
	what := actionWord[o.Action]
	if len(o.Effects) > 0 {
		what = o.Effects[0]
	}
	fmt.Fprintf(b, "\n<details><summary><code>%s %s</code>: %s</summary>\n\n", actionMark[o.Action], mdEscape(o.Title()), mdEscape(what))
	var lines []string
	if o.Origin != "" {
		lines = append(lines, fmt.Sprintf("- %s from `%s`", actionWord[o.Action], o.Origin))
	}
	if o.RenderedBy != "" {
		lines = append(lines, fmt.Sprintf("- rendered by %s", mdEscape(o.RenderedBy)))
	}
	if len(o.Effects) > 1 {
		for _, e := range o.Effects {
			lines = append(lines, "- "+mdEscape(e))
		}
	}
	if o.SecretKeys != nil {
		lines = append(lines, fmt.Sprintf("- %s%s (values are never shown)", mdEscape(o.SecretKeys.String()), encryptedNote(o)))
	}
	b.WriteString(strings.Join(lines, "\n"))
	if o.Diff != "" {
		fence := "```"
		for strings.Contains(o.Diff, fence) {
			fence += "`"
		}
		fmt.Fprintf(b, "\n\n%sdiff\n%s%s", fence, o.Diff, fence)
	}
	b.WriteString("\n\n</details>\n")
}

// mdEscape keeps text from being read as HTML in a comment.
var mdEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
