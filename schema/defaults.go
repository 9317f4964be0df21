package schema

import "k8s.io/apimachinery/pkg/runtime"

func setDefaults(obj runtime.Object) {}
