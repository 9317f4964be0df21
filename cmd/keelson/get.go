package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// tableAccept asks for the server's Table rendering, with the columns kubectl
// shows, falling back to plain JSON.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

type getOptions struct {
	clientFlags
	namespace     string
	allNamespaces bool
	selector      string
	output        string
	watch         bool
}

func newGetCmd() *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show objects through the API, with the columns kubectl shows",
		Example: `  keelson get pods -A
  keelson get deploy web -n shop -o yaml
  keelson get pods -l app=web -w`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0], name)
		},
	}
	o.clientFlags.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "every namespace")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector (app=web, tier in (a,b), !canary)")
	f.StringVarP(&o.output, "output", "o", "", "output: wide, yaml or json")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, watch for changes")
	return cmd
}

// target is a resolved KIND argument: the API path of its objects.
type target struct {
	client     rest.Interface
	resource   metav1.APIResource
	groupVer   string
	namespaced bool
}

// resolve finds a kind by plural, singular, short name or kind, as kubectl
// does, from the server's discovery.
func resolve(cfg *rest.Config, kind string) (*target, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	want := strings.ToLower(kind)
	var known []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			known = append(known, r.Name)
			names := append([]string{r.Name, r.SingularName, strings.ToLower(r.Kind)}, r.ShortNames...)
			for _, n := range names {
				if n == want || (strings.Contains(want, ".") && r.Name+"."+strings.Split(l.GroupVersion, "/")[0] == want) {
					return &target{client: dc.RESTClient(), resource: r, groupVer: l.GroupVersion, namespaced: r.Namespaced}, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("the server has no resource %q; it serves: %s", kind, strings.Join(known, ", "))
}

// path is the URL path of the objects (or one object) in namespace ns ("" for
// all namespaces).
func (t *target) path(ns, name string) string {
	p := "/apis/" + t.groupVer
	if !strings.Contains(t.groupVer, "/") {
		p = "/api/" + t.groupVer
	}
	if t.namespaced && ns != "" {
		p += "/namespaces/" + ns
	}
	p += "/" + t.resource.Name
	if name != "" {
		p += "/" + name
	}
	return p
}

func (o *getOptions) run(ctx context.Context, out io.Writer, kind, name string) error {
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	t, err := resolve(cfg, kind)
	if err != nil {
		return err
	}
	ns := o.namespace
	if o.allNamespaces && name == "" {
		ns = ""
	}
	req := t.client.Get().AbsPath(t.path(ns, name))
	if o.selector != "" {
		req = req.Param("labelSelector", o.selector)
	}
	switch o.output {
	case "yaml", "json":
		b, err := req.DoRaw(ctx)
		if err != nil {
			return err
		}
		return printObject(out, b, o.output)
	case "", "wide":
	default:
		return fmt.Errorf("-o %q: want wide, yaml or json", o.output)
	}
	b, err := req.SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		return err
	}
	var tbl metav1.Table
	if err := json.Unmarshal(b, &tbl); err != nil {
		return fmt.Errorf("decode table: %w", err)
	}
	p := &tablePrinter{out: tabwriter.NewWriter(out, 3, 0, 3, ' ', 0), wide: o.output == "wide", namespaces: ns == "" && t.namespaced}
	p.print(&tbl, true)
	if len(tbl.Rows) == 0 && !o.watch {
		where := " in namespace " + ns
		if ns == "" || !t.namespaced {
			where = ""
		}
		fmt.Fprintf(out, "No resources found%s.\n", where)
		return nil
	}
	if !o.watch {
		return nil
	}
	return o.watchTable(ctx, t, ns, name, tbl.ResourceVersion, p)
}

func printObject(out io.Writer, b []byte, format string) error {
	if format == "json" {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	}
	y, err := yaml.JSONToYAML(b)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

// tablePrinter prints Tables as kubectl does: upper-case headers, wide
// columns only with -o wide, a NAMESPACE column across namespaces.
type tablePrinter struct {
	out        *tabwriter.Writer
	wide       bool
	namespaces bool
	headed     bool
}

func (p *tablePrinter) print(t *metav1.Table, header bool) {
	if header && !p.headed && len(t.ColumnDefinitions) > 0 {
		var cols []string
		if p.namespaces {
			cols = append(cols, "NAMESPACE")
		}
		for _, c := range t.ColumnDefinitions {
			if c.Priority == 0 || p.wide {
				cols = append(cols, strings.ToUpper(c.Name))
			}
		}
		if len(t.Rows) > 0 {
			fmt.Fprintln(p.out, strings.Join(cols, "\t"))
			p.headed = true
		}
	}
	for _, r := range t.Rows {
		var cells []string
		if p.namespaces {
			var m metav1.PartialObjectMetadata
			_ = json.Unmarshal(r.Object.Raw, &m)
			cells = append(cells, m.Namespace)
		}
		for i, c := range r.Cells {
			if i < len(t.ColumnDefinitions) && (t.ColumnDefinitions[i].Priority == 0 || p.wide) {
				cells = append(cells, fmt.Sprint(c))
			}
		}
		fmt.Fprintln(p.out, strings.Join(cells, "\t"))
	}
	p.out.Flush()
}

// watchTable streams changes after rv as table rows.
func (o *getOptions) watchTable(ctx context.Context, t *target, ns, name, rv string, p *tablePrinter) error {
	req := t.client.Get().AbsPath(t.path(ns, "")).Param("watch", "true").Param("resourceVersion", rv).SetHeader("Accept", tableAccept)
	if o.selector != "" {
		req = req.Param("labelSelector", o.selector)
	}
	if name != "" {
		req = req.Param("fieldSelector", "metadata.name="+name)
	}
	stream, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	dec := json.NewDecoder(stream)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		}
		switch ev.Type {
		case "BOOKMARK":
			continue
		case "ERROR":
			var st metav1.Status
			_ = json.Unmarshal(ev.Object, &st)
			return fmt.Errorf("watch ended: %s", st.Message)
		}
		var tbl metav1.Table
		if err := json.Unmarshal(ev.Object, &tbl); err != nil {
			return fmt.Errorf("decode watch event: %w", err)
		}
		p.print(&tbl, true)
	}
}
