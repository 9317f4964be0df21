package schema

import (
	"strings"
	"testing"
)

// TestStoredKindRules: the rules Kubernetes applies to RBAC objects, budgets,
// network policies and webhooks give exact errors at file:line:column. Rules
// checked in Go after decoding point at the field's key, as the other
// kinds' cross-field rules do.
func TestStoredKindRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error, sorted; none means accepted
	}{
		{name: "role names may hold colons and capitals",
			src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:Controller:x\n"},
		{name: "role name dot-dot",
			src:  "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: ..\n",
			want: []string{`r.yaml:4:9: Role default/..: metadata.name: must be a path segment name: not empty, "." or "..", without '/' or '%'`}},
		{name: "binding roleRef from another group",
			src:  "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: a}\nroleRef:\n  apiGroup: apps\n  kind: Role\n  name: r\n",
			want: []string{`r.yaml:5:13: RoleBinding a/b: roleRef.apiGroup: must be rbac.authorization.k8s.io`}},
		{name: "service account subjects",
			src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {kind: ClusterRole, name: view}\nsubjects:\n" +
				"- kind: ServiceAccount\n  name: ci\n- kind: ServiceAccount\n  apiGroup: rbac.authorization.k8s.io\n  name: Robot\n  namespace: ci\n- kind: User\n  apiGroup: example.com\n  name: jane\n",
			want: []string{
				`r.yaml:6:3: ClusterRoleBinding b: subjects[0].namespace: required field is missing: a ClusterRoleBinding must say which namespace the ServiceAccount is in`,
				`r.yaml:9:3: ClusterRoleBinding b: subjects[1].apiGroup: must be empty for a ServiceAccount (the core group), got "rbac.authorization.k8s.io"`,
				`r.yaml:10:3: ClusterRoleBinding b: subjects[1].name: must be a ServiceAccount name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
				`r.yaml:13:3: ClusterRoleBinding b: subjects[2].apiGroup: must be rbac.authorization.k8s.io for a User, got "example.com"`,
			}},
		{name: "namespaced service account subject without namespace",
			src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: ci}]\n"},
		{name: "budget with both minAvailable and maxUnavailable",
			src: "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 1\n  maxUnavailable: 1\n  unhealthyPodEvictionPolicy: Always\n",
			want: []string{
				`r.yaml:6:3: PodDisruptionBudget default/web: spec.maxUnavailable: minAvailable and maxUnavailable cannot both be set: a budget says one or the other`,
				`r.yaml:7:31: PodDisruptionBudget default/web: spec.unhealthyPodEvictionPolicy: must be IfHealthyBudget or AlwaysAllow`,
			}},
		{name: "network policy peers and ports",
			src: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec:\n  policyTypes: [Ingress, Sideways]\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.300/8}\n" +
				"    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n    ports:\n    - {port: http, endPort: 90}\n    - {port: 100, endPort: 90}\n",
			want: []string{
				`r.yaml:5:26: NetworkPolicy default/np: spec.policyTypes[1]: must be Ingress or Egress`,
				`r.yaml:8:17: NetworkPolicy default/np: spec.egress[0].to[0].ipBlock.cidr: must be a CIDR such as 10.0.0.0/8, got "10.0.0.300/8"`,
				`r.yaml:9:7: NetworkPolicy default/np: spec.egress[0].to[1].ipBlock: must not be set together with podSelector or namespaceSelector: a peer is one or the other`,
				`r.yaml:12:20: NetworkPolicy default/np: spec.egress[0].ports[0].endPort: may only be set with a numeric port`,
				`r.yaml:13:19: NetworkPolicy default/np: spec.egress[0].ports[1].endPort: must be at least port 100`,
			}},
		{name: "ingress class parameters of scope Namespace need one",
			src:  "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\nspec:\n  controller: example.com/ingress\n  parameters: {kind: P, name: p, scope: Namespace}\n",
			want: []string{`r.yaml:6:3: IngressClass c: spec.parameters.namespace: required field is missing: parameters of scope Namespace name their namespace`}},
		{name: "webhooks: duplicate names, url and service, http url",
			src: "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks:\n" +
				"- name: a.example.com\n  clientConfig: {url: \"https://a.example.com/\", service: {namespace: x, name: y}}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n" +
				"- name: a.example.com\n  clientConfig: {url: \"http://a.example.com/\"}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  timeoutSeconds: 60\n",
			want: []string{
				`r.yaml:6:3: ValidatingWebhookConfiguration w: webhooks[0].clientConfig: must set exactly one of url and service`,
				`r.yaml:9:3: ValidatingWebhookConfiguration w: webhooks[1].name: duplicate webhook name "a.example.com": names must be unique within a configuration`,
				`r.yaml:10:23: ValidatingWebhookConfiguration w: webhooks[1].clientConfig.url: must be an https:// URL: the API server calls webhooks over TLS only`,
				`r.yaml:13:19: ValidatingWebhookConfiguration w: webhooks[1].timeoutSeconds: must be from 1 to 30 seconds`,
			}},
		{name: "cluster-scoped kind with a namespace",
			src: "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: system-high, namespace: a}\nvalue: 1\n",
			want: []string{
				`r.yaml:3:18: PriorityClass a/system-high: metadata.name: must not start with system-: the prefix is reserved for the system's own classes`,
				`r.yaml:3:42: PriorityClass a/system-high: metadata.namespace: must be a DNS label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit`,
				`r.yaml:3:42: PriorityClass a/system-high: metadata.namespace: must be empty: a PriorityClass is not namespaced`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := validate(t, "r.yaml", tt.src)
			if got, want := strings.Join(errs, "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			if len(tt.want) == 0 && len(objs) != 1 {
				t.Errorf("want the object accepted, got %d objects", len(objs))
			}
		})
	}
}
