package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/gitsync"
)

func newStatusCmd() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "status [SYNC]",
		Short: "Show what each Git source last applied, why an attempt failed, and how healthy its objects are",
		Long: `status reads the Sync objects (syncs.keelson.dev) through the API: for each
source its revision and commit, the Ready, Stalled and Healthy conditions, the errors
of a failed attempt with their file:line, the objects that are not healthy, the
objects keelson stores but does not act on yet (claims, Ingresses, quotas, ...),
and the last attempts. The same data, raw: kubectl get syncs.keelson.dev -o yaml.`,
		Example: `  keelson status
  keelson status default`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return runStatus(cmd.Context(), cmd.OutOrStdout(), &c, name)
		},
	}
	c.add(cmd)
	return cmd
}

func runStatus(ctx context.Context, out io.Writer, c *clientFlags, name string) error {
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	t, err := resolve(cfg, "syncs.keelson.dev")
	if err != nil {
		return err
	}
	b, err := t.client.Get().AbsPath(t.path("", name)).DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no sync named %q: `keelson status` lists them all", name)
	}
	if err != nil {
		return err
	}
	var syncs []keelsonv1alpha1.Sync
	if name != "" {
		var s keelsonv1alpha1.Sync
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode sync %s: %w", name, err)
		}
		syncs = append(syncs, s)
	} else {
		var l keelsonv1alpha1.SyncList
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("decode syncs: %w", err)
		}
		syncs = l.Items
	}
	if len(syncs) == 0 {
		fmt.Fprintln(out, "No syncs: the server has no Git source (start it with --repo or --config).")
		return nil
	}
	for i := range syncs {
		if i > 0 {
			fmt.Fprintln(out)
		}
		printSync(out, &syncs[i], time.Now())
	}
	return nil
}

// printSync writes one Sync for people.
func printSync(out io.Writer, s *keelsonv1alpha1.Sync, now time.Time) {
	st := s.Status
	src := s.Spec.URL
	if s.Spec.Ref != "" {
		src += " @ " + s.Spec.Ref
	}
	if s.Spec.Path != "" {
		src += ", path " + s.Spec.Path
	}
	fmt.Fprintf(out, "Sync %s: %s\n", s.Name, src)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if s.Spec.Suspend {
		fmt.Fprintf(w, "  Suspended\ttrue: nothing is synced until the source is resumed\n")
	}
	for _, typ := range []string{keelsonv1alpha1.ConditionReady, keelsonv1alpha1.ConditionStalled, keelsonv1alpha1.ConditionHealthy} {
		if c := meta.FindStatusCondition(st.Conditions, typ); c != nil {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", typ, c.Status, c.Reason, c.Message)
		}
	}
	commit := func(label string, c *keelsonv1alpha1.Commit) {
		if c == nil {
			return
		}
		when := ""
		if c.Time != nil {
			when = duration.HumanDuration(now.Sub(c.Time.Time)) + " ago"
		}
		fmt.Fprintf(w, "  %s\t%s\t%q\t%s\t%s\n", label, keelsonv1alpha1.ShortRevision(c.Revision), c.Message, c.Author, when)
	}
	commit("Applied", st.LastApplied)
	if st.LastAttemptedRevision != st.LastAppliedRevision {
		commit("Attempted", st.LastAttempted)
	}
	if st.PendingRevision != "" {
		fmt.Fprintf(w, "  Pending\t%s\tan apply in stages was interrupted; the next sync finishes it\n", keelsonv1alpha1.ShortRevision(st.PendingRevision))
	}
	fmt.Fprintf(w, "  Objects\t%d\tdrift corrected: %d\n", len(st.Inventory), st.DriftCorrections)
	if names := gitsync.NotActedOn(st.Inventory); len(names) > 0 {
		fmt.Fprintf(w, "  Not acted on\t%d\tkeelson stores these but does not act on their kinds yet: %s\n", len(names), joinBounded(names, maxNotActedOnShown))
	}
	if h := st.Health; h != nil && h.Status != "Healthy" {
		fmt.Fprintf(w, "  Health\t%s\t%s\n", h.Status, h.Message)
	}
	if st.FailedRevision != "" {
		fmt.Fprintf(w, "  Failed\t%s\tfailed its hooks or health check; not tried again until the source moves\n", keelsonv1alpha1.ShortRevision(st.FailedRevision))
	}
	w.Flush()
	if h := st.Health; h != nil && len(h.Objects) > 0 {
		fmt.Fprintln(out, "  Not healthy:")
		for _, o := range h.Objects {
			fmt.Fprintf(out, "    %s %s: %s: %s\n", o.Kind, qualified(o.Namespace, o.Name), o.Status, o.Message)
		}
	}
	if len(st.Errors) > 0 {
		what := "nothing of it was applied"
		if c := meta.FindStatusCondition(st.Conditions, keelsonv1alpha1.ConditionReady); c != nil &&
			(c.Reason == keelsonv1alpha1.ReasonHookFailed || c.Reason == keelsonv1alpha1.ReasonHealthCheckFailed) {
			what = "what its earlier waves wrote stays; nothing after the failure was written"
		}
		fmt.Fprintf(out, "  Errors of revision %s (%s):\n", keelsonv1alpha1.ShortRevision(st.LastAttemptedRevision), what)
		for _, e := range st.Errors {
			fmt.Fprintf(out, "    %s\n", strings.ReplaceAll(e, "\n", "\n    "))
		}
	}
	if len(st.History) > 0 {
		fmt.Fprintln(out, "  History:")
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "    REVISION\tRESULT\tWHEN\tTOOK\tCREATED\tUPDATED\tDELETED\tUNCHANGED\tDRIFT")
		for _, a := range st.History {
			fmt.Fprintf(w, "    %s\t%s\t%s ago\t%s\t%d\t%d\t%d\t%d\t%d\n", keelsonv1alpha1.ShortRevision(a.Revision), a.Result,
				duration.HumanDuration(now.Sub(a.StartTime.Time)), a.Duration.Round(time.Millisecond), a.Created, a.Updated, a.Deleted, a.Unchanged, a.DriftCorrected)
		}
		w.Flush()
	}
}

// maxNotActedOnShown bounds the objects named on the "Not acted on" line;
// the health's list below names them with what is missing.
const maxNotActedOnShown = 5

// joinBounded joins the first n names and counts the rest.
func joinBounded(names []string, n int) string {
	s := strings.Join(names[:min(len(names), n)], ", ")
	if len(names) > n {
		s += fmt.Sprintf(" and %d more", len(names)-n)
	}
	return s
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
