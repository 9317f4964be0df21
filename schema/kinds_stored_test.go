package schema

import (
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kindCase is the element type of kindCases.
type kindCase = struct {
	kind     string
	valid    string
	invalid  string
	wantErr  string
	defaults func(runtime.Object) []string
}

const (
	rbacV1  = "apiVersion: rbac.authorization.k8s.io/v1\n"
	admV1   = "apiVersion: admissionregistration.k8s.io/v1\n"
	flowV1  = "apiVersion: flowcontrol.apiserver.k8s.io/v1\n"
	webhook = "webhooks:\n- name: policy.example.com\n  clientConfig: {service: {namespace: sec, name: policy}}\n  rules: [{operations: [CREATE], apiGroups: [\"\"], apiVersions: [v1], resources: [pods]}]\n  sideEffects: None\n  admissionReviewVersions: [v1]\n"
)

// storedKindCases are the cases of the kinds of Kubernetes' own API groups
// that keelson stores without acting on them.
var storedKindCases = []kindCase{
	{kind: "Role",
		valid:   rbacV1 + "kind: Role\nmetadata: {name: \"system:pod-reader\", namespace: team-a}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [get, list, watch]}]\n",
		invalid: rbacV1 + "kind: Role\nmetadata: {name: \"pods/reader\"}\nrules: [{apiGroups: [\"\"], resources: [pods]}]\n",
		wantErr: "metadata.name: must be a path segment name"},
	{kind: "ClusterRole",
		valid:   rbacV1 + "kind: ClusterRole\nmetadata: {name: Viewer}\nrules: [{nonResourceURLs: [/healthz], verbs: [get]}]\naggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: view}}]}\n",
		invalid: rbacV1 + "kind: ClusterRole\nmetadata: {name: viewer}\nrules: [{resources: [pods], verbs: []}]\n",
		wantErr: "rules[0].verbs: must list at least one verb"},
	{kind: "RoleBinding",
		valid: rbacV1 + "kind: RoleBinding\nmetadata: {name: read-pods}\nsubjects:\n- {kind: User, name: jane}\n- {kind: ServiceAccount, name: robot}\nroleRef: {kind: Role, name: pod-reader}\n",
		invalid: rbacV1 + "kind: RoleBinding\nmetadata: {name: read-pods}\nsubjects:\n- {kind: Robot, name: jane}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}\n",
		wantErr: "subjects[0].kind: must be User, Group or ServiceAccount",
		defaults: func(o runtime.Object) []string {
			b := o.(*rbacv1.RoleBinding)
			return diffs("roleRef apiGroup", b.RoleRef.APIGroup, rbacv1.GroupName, "user apiGroup", b.Subjects[0].APIGroup, rbacv1.GroupName,
				"service account apiGroup", b.Subjects[1].APIGroup, "")
		}},
	{kind: "ClusterRoleBinding",
		valid:   rbacV1 + "kind: ClusterRoleBinding\nmetadata: {name: admins}\nsubjects: [{kind: Group, name: \"system:masters\"}, {kind: ServiceAccount, name: ci, namespace: ci}]\nroleRef: {kind: ClusterRole, name: cluster-admin}\n",
		invalid: rbacV1 + "kind: ClusterRoleBinding\nmetadata: {name: admins}\nsubjects: [{kind: Group, name: admins}]\nroleRef: {kind: Role, name: pod-reader}\n",
		wantErr: "roleRef.kind: must be ClusterRole",
		defaults: func(o runtime.Object) []string {
			return diffs("group apiGroup", o.(*rbacv1.ClusterRoleBinding).Subjects[0].APIGroup, rbacv1.GroupName)
		}},
	{kind: "PodDisruptionBudget",
		valid:   "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {minAvailable: 50%, selector: {matchLabels: {app: web}}}\n",
		invalid: "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {maxUnavailable: 150%, selector: {matchLabels: {app: web}}}\n",
		wantErr: "spec.maxUnavailable: must be a non-negative integer or a percentage from 0% to 100%",
		defaults: func(o runtime.Object) []string {
			s := o.(*policyv1.PodDisruptionBudget).Spec
			return diffs("minAvailable kept", *s.MinAvailable, intstr.FromString("50%"), "no eviction policy", s.UnhealthyPodEvictionPolicy == nil, true)
		}},
	{kind: "PriorityClass",
		valid:   "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 100000\ndescription: batch before web\n",
		invalid: "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 2000000000\n",
		wantErr: "value: must be an integer of at most 1000000000",
		defaults: func(o runtime.Object) []string {
			return diffs("preemptionPolicy", *o.(*schedulingv1.PriorityClass).PreemptionPolicy, corev1.PreemptLowerPriority)
		}},
	{kind: "RuntimeClass",
		valid:   "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\noverhead: {podFixed: {memory: 120Mi}}\n",
		invalid: "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: run.sc\n",
		wantErr: "handler: must be a DNS label"},
	{kind: "ValidatingWebhookConfiguration",
		valid:   admV1 + "kind: ValidatingWebhookConfiguration\nmetadata: {name: policy}\n" + webhook,
		invalid: admV1 + "kind: ValidatingWebhookConfiguration\nmetadata: {name: policy}\n" + strings.Replace(webhook, "sideEffects: None", "sideEffects: Some", 1),
		wantErr: "webhooks[0].sideEffects: must be None or NoneOnDryRun",
		defaults: func(o runtime.Object) []string {
			w := o.(*admissionv1.ValidatingWebhookConfiguration).Webhooks[0]
			return diffs("failurePolicy", *w.FailurePolicy, admissionv1.Fail, "matchPolicy", *w.MatchPolicy, admissionv1.Equivalent,
				"timeoutSeconds", *w.TimeoutSeconds, int32(10), "service port", *w.ClientConfig.Service.Port, int32(443),
				"rule scope", *w.Rules[0].Scope, admissionv1.AllScopes)
		}},
	{kind: "MutatingWebhookConfiguration",
		valid:   admV1 + "kind: MutatingWebhookConfiguration\nmetadata: {name: inject}\n" + strings.Replace(webhook, "policy.example.com", "inject.example.com", 1),
		invalid: admV1 + "kind: MutatingWebhookConfiguration\nmetadata: {name: inject}\n" + strings.Replace(webhook, "policy.example.com", "inject", 1),
		wantErr: "webhooks[0].name: must be a fully qualified name",
		defaults: func(o runtime.Object) []string {
			return diffs("reinvocationPolicy", *o.(*admissionv1.MutatingWebhookConfiguration).Webhooks[0].ReinvocationPolicy, admissionv1.NeverReinvocationPolicy)
		}},
	{kind: "ValidatingAdmissionPolicy",
		valid: admV1 + "kind: ValidatingAdmissionPolicy\nmetadata: {name: replicas}\nspec:\n  matchConstraints: {resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]}\n" +
			"  validations: [{expression: \"object.spec.replicas <= 5\"}]\n",
		invalid: admV1 + "kind: ValidatingAdmissionPolicy\nmetadata: {name: replicas}\nspec:\n  validations: [{expression: \"object.spec.replicas <= 5\"}]\n",
		wantErr: "spec.matchConstraints: required field is missing",
		defaults: func(o runtime.Object) []string {
			return diffs("failurePolicy", *o.(*admissionv1.ValidatingAdmissionPolicy).Spec.FailurePolicy, admissionv1.Fail)
		}},
	{kind: "ValidatingAdmissionPolicyBinding",
		valid:   admV1 + "kind: ValidatingAdmissionPolicyBinding\nmetadata: {name: replicas}\nspec: {policyName: replicas, validationActions: [Deny, Audit]}\n",
		invalid: admV1 + "kind: ValidatingAdmissionPolicyBinding\nmetadata: {name: replicas}\nspec: {policyName: replicas, validationActions: [Block]}\n",
		wantErr: "spec.validationActions",
	},
	{kind: "NetworkPolicy",
		valid: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db}\nspec:\n  podSelector: {matchLabels: {app: db}}\n" +
			"  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}], ports: [{port: 5432}]}]\n",
		invalid: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db}\nspec:\n  podSelector: {}\n" +
			"  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]\n",
		wantErr: "spec.ingress[0].from[0].ipBlock.except[0]: must be a strict subset of cidr 10.0.0.0/8",
		defaults: func(o runtime.Object) []string {
			s := o.(*networkingv1.NetworkPolicy).Spec
			return diffs("protocol", *s.Ingress[0].Ports[0].Protocol, corev1.ProtocolTCP, "policyTypes", s.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress})
		}},
	{kind: "IngressClass",
		valid:   "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx, parameters: {apiGroup: k8s.example.com, kind: IngressParameters, name: external-lb}}\n",
		invalid: "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: nginx}\n",
		wantErr: "spec.controller: must be a domain-prefixed path",
		defaults: func(o runtime.Object) []string {
			return diffs("parameters scope", *o.(*networkingv1.IngressClass).Spec.Parameters.Scope, networkingv1.IngressClassParametersReferenceScopeCluster)
		}},
	{kind: "Lease",
		valid:   "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: leader, namespace: jobs}\nspec: {holderIdentity: none, leaseDurationSeconds: 15}\n",
		invalid: "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: node-1, namespace: kube-node-lease}\nspec: {leaseDurationSeconds: 40}\n",
		wantErr: "metadata.namespace: must not be kube-node-lease"},
	{kind: "CSIDriver",
		valid:   "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: hostpath.csi.k8s.io}\nspec: {attachRequired: false, volumeLifecycleModes: [Persistent, Ephemeral]}\n",
		invalid: "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: hostpath.csi.k8s.io}\nspec: {volumeLifecycleModes: [Forever]}\n",
		wantErr: "spec.volumeLifecycleModes[0]: must be Persistent or Ephemeral",
		defaults: func(o runtime.Object) []string {
			s := o.(*storagev1.CSIDriver).Spec
			return diffs("attachRequired kept", *s.AttachRequired, false, "podInfoOnMount", *s.PodInfoOnMount, false,
				"fsGroupPolicy", *s.FSGroupPolicy, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
		}},
	{kind: "VolumeAttachment",
		valid:   "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: va1}\nspec: {attacher: hostpath.csi.k8s.io, nodeName: node-1, source: {persistentVolumeName: pv1}}\n",
		invalid: "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: va1}\nspec: {attacher: hostpath.csi.k8s.io, nodeName: node-1, source: {}}\n",
		wantErr: "spec.source: must set exactly one of persistentVolumeName and inlineVolumeSpec"},
	{kind: "CSIStorageCapacity",
		valid:   "apiVersion: storage.k8s.io/v1\nkind: CSIStorageCapacity\nmetadata: {name: cap1}\nstorageClassName: fast\ncapacity: 100Gi\nnodeTopology: {matchLabels: {topology.hostpath.csi/node: node-1}}\n",
		invalid: "apiVersion: storage.k8s.io/v1\nkind: CSIStorageCapacity\nmetadata: {name: cap1}\ncapacity: 100Gi\n",
		wantErr: "storageClassName: required field is missing"},
	{kind: "PodTemplate",
		valid:   "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: worker}\ntemplate:\n  metadata: {labels: {app: worker}}\n  spec: {containers: [{name: app, image: \"busybox:1.36\"}]}\n",
		invalid: "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: worker}\ntemplate:\n  spec:\n    containers: [{name: App, image: busybox}]\n",
		wantErr: "template.spec.containers[0].name: must be a DNS label",
		defaults: func(o runtime.Object) []string {
			return diffs("restartPolicy", o.(*corev1.PodTemplate).Template.Spec.RestartPolicy, corev1.RestartPolicyAlways)
		}},
	{kind: "FlowSchema",
		valid: flowV1 + "kind: FlowSchema\nmetadata: {name: ci}\nspec:\n  priorityLevelConfiguration: {name: ci}\n  distinguisherMethod: {type: ByUser}\n" +
			"  rules: [{subjects: [{kind: Group, group: {name: ci}}], resourceRules: [{verbs: [\"*\"], apiGroups: [\"*\"], resources: [\"*\"], namespaces: [\"*\"]}]}]\n",
		invalid: flowV1 + "kind: FlowSchema\nmetadata: {name: ci}\nspec:\n  priorityLevelConfiguration: {name: ci}\n  matchingPrecedence: 20000\n",
		wantErr: "spec.matchingPrecedence: must be from 1 to 10000",
		defaults: func(o runtime.Object) []string {
			return diffs("matchingPrecedence", o.(*flowcontrolv1.FlowSchema).Spec.MatchingPrecedence, int32(1000))
		}},
	{kind: "PriorityLevelConfiguration",
		valid:   flowV1 + "kind: PriorityLevelConfiguration\nmetadata: {name: ci}\nspec: {type: Limited, limited: {limitResponse: {type: Reject}}}\n",
		invalid: flowV1 + "kind: PriorityLevelConfiguration\nmetadata: {name: ci}\nspec: {type: Unlimited}\n",
		wantErr: "spec.type: must be Exempt or Limited",
		defaults: func(o runtime.Object) []string {
			return diffs("nominalConcurrencyShares", *o.(*flowcontrolv1.PriorityLevelConfiguration).Spec.Limited.NominalConcurrencyShares, int32(30))
		}},
}
