package schema

import (
	"encoding/json"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// applyDefaults fills in the `default` of each property the object lacks,
// inside the objects it has, as the API server defaults a custom resource
// when it reads it.
func applyDefaults(obj map[string]any, s *apiextensionsv1.JSONSchemaProps) {
	if s == nil || obj == nil {
		return
	}
	for name, prop := range s.Properties {
		v, ok := obj[name]
		if !ok && prop.Default != nil {
			var d any
			if json.Unmarshal(prop.Default.Raw, &d) == nil {
				obj[name], v, ok = d, d, true
			}
		}
		if ok {
			defaultValue(v, &prop)
		}
	}
	if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil {
		for name, v := range obj {
			if _, named := s.Properties[name]; !named {
				defaultValue(v, ap.Schema)
			}
		}
	}
}

func defaultValue(v any, s *apiextensionsv1.JSONSchemaProps) {
	switch x := v.(type) {
	case map[string]any:
		applyDefaults(x, s)
	case []any:
		if s.Items == nil || s.Items.Schema == nil {
			return
		}
		for _, e := range x {
			defaultValue(e, s.Items.Schema)
		}
	}
}
