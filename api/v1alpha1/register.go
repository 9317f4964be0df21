package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is keelson's API group.
const GroupName = "keelson.dev"

// SchemeGroupVersion is the group and version of the types in this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder registers the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds Sync, NodePolicy and HelmChart (and their lists) to a
	// scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&Sync{}, &SyncList{},
		&NodePolicy{}, &NodePolicyList{},
		&HelmChart{}, &HelmChartList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
