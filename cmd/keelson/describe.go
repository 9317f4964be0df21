package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

func newDescribeCmd() *cobra.Command {
	var c clientFlags
	var namespace string
	cmd := &cobra.Command{
		Use:     "describe KIND NAME",
		Short:   "Show one object in detail, with its events, through the API",
		Example: "  keelson describe pod web-7d9c5b8f6-x2x9q -n shop",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return describe(cmd.Context(), cmd.OutOrStdout(), &c, namespace, args[0], args[1])
		},
	}
	c.add(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	return cmd
}

func describe(ctx context.Context, out io.Writer, c *clientFlags, ns, kind, name string) error {
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	return describeObject(ctx, out, cfg, ns, kind, name)
}

func describeObject(ctx context.Context, out io.Writer, cfg *rest.Config, ns, kind, name string) error {
	t, err := resolve(cfg, kind)
	if err != nil {
		return err
	}
	if !t.namespaced {
		ns = ""
	}
	b, err := t.client.Get().AbsPath(t.path(ns, name)).DoRaw(ctx)
	if err != nil {
		return err
	}
	var obj struct {
		metav1.TypeMeta
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	m := obj.Metadata
	w := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", m.Name)
	if m.Namespace != "" {
		fmt.Fprintf(w, "Namespace:\t%s\n", m.Namespace)
	}
	fmt.Fprintf(w, "Kind:\t%s\n", obj.Kind)
	fmt.Fprintf(w, "Created:\t%s\n", m.CreationTimestamp.UTC().Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(w, "Labels:\t%s\n", keyValues(m.Labels))
	fmt.Fprintf(w, "Annotations:\t%s\n", keyValues(m.Annotations))
	if src := m.Labels[keelsonv1alpha1.LabelSource]; src != "" {
		fmt.Fprintf(w, "From Git:\tsync %s, %s at %s\n", src, orDash(m.Annotations[keelsonv1alpha1.AnnotationOrigin]), orDash(m.Annotations[keelsonv1alpha1.AnnotationRevision]))
	}
	w.Flush()
	if obj.Kind == "Service" {
		if err := describeService(ctx, out, t.client, b); err != nil {
			return err
		}
	}
	if obj.Kind == "Secret" {
		// As kubectl describe: a Secret's keys and sizes, never its values,
		// whoever asks.
		if err := describeSecretData(out, fields); err != nil {
			return err
		}
		delete(fields, "data")
		delete(fields, "stringData")
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != "metadata" && k != "kind" && k != "apiVersion" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		y, err := yaml.JSONToYAML(fields[k])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s:\n%s", strings.ToUpper(k[:1])+k[1:], indent(string(y), "  "))
	}
	return describeEvents(ctx, out, t, obj.Kind, m)
}

// describeSecretData prints the size of each value of a Secret's data and
// stringData; a reader without the grant gets the sizes from the API's
// redacted-sizes annotation.
func describeSecretData(out io.Writer, fields map[string]json.RawMessage) error {
	var sec corev1.Secret
	raw, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &sec); err != nil {
		return err
	}
	sizes := map[string]int{}
	if redacted, ok := sec.Annotations[keelsonv1alpha1.AnnotationRedactedValueSizes]; ok {
		if err := json.Unmarshal([]byte(redacted), &sizes); err != nil {
			return fmt.Errorf("annotation %s: %w", keelsonv1alpha1.AnnotationRedactedValueSizes, err)
		}
	} else {
		for k, v := range sec.Data {
			sizes[k] = len(v)
		}
		for k, v := range sec.StringData {
			sizes[k] = len(v)
		}
	}
	fmt.Fprintln(out, "Data:")
	for _, k := range slices.Sorted(maps.Keys(sizes)) {
		fmt.Fprintf(out, "  %s:\t%d bytes\n", k, sizes[k])
	}
	return nil
}

func describeEvents(ctx context.Context, out io.Writer, t *target, kind string, m metav1.ObjectMeta) error {
	sel := "involvedObject.name=" + m.Name + ",involvedObject.kind=" + kind
	path := "/api/v1/events"
	if m.Namespace != "" {
		path = "/api/v1/namespaces/" + m.Namespace + "/events"
	}
	b, err := t.client.Get().AbsPath(path).Param("fieldSelector", sel).DoRaw(ctx)
	if err != nil {
		fmt.Fprintf(out, "Events:\t<cannot list: %v>\n", err)
		return nil
	}
	var list corev1.EventList
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(out, "Events:\t<none>")
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].LastTimestamp.Before(&list.Items[j].LastTimestamp) })
	fmt.Fprintln(out, "Events:")
	w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "  TYPE\tREASON\tFROM\tMESSAGE")
	for _, e := range list.Items {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", e.Type, e.Reason, orDash(e.Source.Component), strings.TrimSpace(e.Message))
	}
	return w.Flush()
}

func keyValues(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, "\n\t")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}
