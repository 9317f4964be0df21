package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmChart declares, in Git, a Helm chart to render with values: keelson
// renders it from the same repository, with no cluster lookups, and syncs
// the rendered objects as if they were written in Git beside it. The
// HelmChart is stored too, so that `kubectl get helmcharts` shows what was
// declared. Namespaced: the rendered objects default to its namespace.
//
// The fields follow Flux's HelmRelease and Argo CD's Helm source where they
// mean the same thing.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type HelmChart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec HelmChartSpec `json:"spec"`
}

// HelmChartSpec names a chart and the values to render it with.
type HelmChartSpec struct {
	// Chart is the path of a chart folder (holding Chart.yaml) or of a
	// chart archive (.tgz) in the same repository, relative to the folder
	// of the HelmChart's file. With RepoURL, it is the chart's name in
	// that repository instead. Required.
	Chart string `json:"chart"`
	// RepoURL is an HTTP(S) or OCI chart repository to fetch Chart from.
	// It is refused unless the server is given chart repositories; vendor
	// the chart into the Git repository instead.
	RepoURL string `json:"repoURL,omitempty"`
	// Version is the chart version to fetch from RepoURL; only with it.
	Version string `json:"version,omitempty"`
	// ReleaseName is .Release.Name in the templates (metadata.name when
	// empty).
	ReleaseName string `json:"releaseName,omitempty"`
	// TargetNamespace is .Release.Namespace in the templates and the
	// namespace of rendered objects that name none (the HelmChart's own
	// namespace when empty).
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// ValuesFiles are values files in the repository, relative to the
	// folder of the HelmChart's file, merged in order over the chart's
	// values.yaml.
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// Values are merged last, over the chart's values and ValuesFiles.
	// Free-form, as the chart reads them.
	Values *apiextensionsv1.JSON `json:"values,omitempty"`
	// IncludeCRDs renders the CustomResourceDefinitions of the chart's
	// crds/ folders (true when unset).
	IncludeCRDs *bool `json:"includeCRDs,omitempty"`
}

// HelmChartList is a list of HelmCharts.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type HelmChartList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmChart `json:"items"`
}
