package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

type topOptions struct {
	clientFlags
	namespace     string
	allNamespaces bool
	selector      string
}

func newTopCmd() *cobra.Command {
	o := &topOptions{}
	cmd := &cobra.Command{
		Use:   "top pods|nodes",
		Short: "Show CPU and memory use of pods or nodes (as kubectl top)",
		Example: `  keelson top nodes
  keelson top pods -A`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"pods", "nodes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			mc, err := metricsclient.NewForConfig(cfg)
			if err != nil {
				return err
			}
			switch args[0] {
			case "pods", "pod", "po":
				return o.pods(cmd, mc)
			case "nodes", "node", "no":
				client, err := kubernetes.NewForConfig(cfg)
				if err != nil {
					return err
				}
				return o.nodes(cmd, mc, client)
			}
			return fmt.Errorf("keelson top %s: want pods or nodes", args[0])
		},
	}
	o.clientFlags.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "every namespace")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector")
	return cmd
}

func (o *topOptions) pods(cmd *cobra.Command, mc metricsclient.Interface) error {
	ns := o.namespace
	if o.allNamespaces {
		ns = ""
	}
	list, err := mc.MetricsV1beta1().PodMetricses(ns).List(cmd.Context(), metav1.ListOptions{LabelSelector: o.selector})
	if err != nil {
		return fmt.Errorf("pod metrics: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
	if o.allNamespaces {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tCPU(cores)\tMEMORY(bytes)")
	for _, p := range list.Items {
		cpu, mem := resource.Quantity{}, resource.Quantity{}
		for _, c := range p.Containers {
			cpu.Add(*c.Usage.Cpu())
			mem.Add(*c.Usage.Memory())
		}
		if o.allNamespaces {
			fmt.Fprintf(w, "%s\t", p.Namespace)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, milli(cpu), mebi(mem))
	}
	return w.Flush()
}

func (o *topOptions) nodes(cmd *cobra.Command, mc metricsclient.Interface, client kubernetes.Interface) error {
	list, err := mc.MetricsV1beta1().NodeMetricses().List(cmd.Context(), metav1.ListOptions{LabelSelector: o.selector})
	if err != nil {
		return fmt.Errorf("node metrics: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)")
	for _, n := range list.Items {
		cpu, mem := *n.Usage.Cpu(), *n.Usage.Memory()
		cpuPct, memPct := "<unknown>", "<unknown>"
		if node, err := client.CoreV1().Nodes().Get(cmd.Context(), n.Name, metav1.GetOptions{}); err == nil {
			cpuPct = percent(cpu.MilliValue(), node.Status.Allocatable.Cpu().MilliValue())
			memPct = percent(mem.Value(), node.Status.Allocatable.Memory().Value())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.Name, milli(cpu), cpuPct, mebi(mem), memPct)
	}
	return w.Flush()
}

func milli(q resource.Quantity) string { return fmt.Sprintf("%dm", q.MilliValue()) }
func mebi(q resource.Quantity) string  { return fmt.Sprintf("%dMi", q.Value()/(1<<20)) }

func percent(used, of int64) string {
	if of <= 0 {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", used*100/of)
}
