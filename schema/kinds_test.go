package schema

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const podSpec = `
    spec:
      containers:
      - name: app
        image: busybox:1.36
        ports: [{containerPort: 8080}]`

const jobPodSpec = `
    spec:
      restartPolicy: Never
      containers:
      - name: app
        image: busybox`

// kindCases holds, for every supported kind, a valid manifest, an invalid one
// with the error it must give, and a check of the defaults filled in.
var kindCases = []struct {
	kind     string
	valid    string
	invalid  string
	wantErr  string
	defaults func(runtime.Object) []string
}{
	{kind: "Namespace",
		valid:   "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n",
		invalid: "apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n",
		wantErr: "metadata.name: must be a DNS label",
		defaults: func(o runtime.Object) []string {
			return diffs("phase", o.(*corev1.Namespace).Status.Phase, corev1.NamespaceActive)
		}},
	{kind: "Pod",
		valid:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: app, image: nginx, ports: [{containerPort: 80}], livenessProbe: {httpGet: {port: 80}}}\n  volumes: [{name: cfg, configMap: {name: c}}, {name: scratch}]\n",
		invalid: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: app, image: nginx}\n  - {name: app, image: nginx}\n",
		wantErr: `spec.containers[1].name: duplicate container name "app"`,
		defaults: func(o runtime.Object) []string {
			s := o.(*corev1.Pod).Spec
			c := s.Containers[0]
			return diffs(
				"restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways,
				"terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30),
				"dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst,
				"schedulerName", s.SchedulerName, "default-scheduler",
				"imagePullPolicy (no tag)", c.ImagePullPolicy, corev1.PullAlways,
				"port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP,
				"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log",
				"probe period", c.LivenessProbe.PeriodSeconds, int32(10),
				"probe timeout", c.LivenessProbe.TimeoutSeconds, int32(1),
				"probe failureThreshold", c.LivenessProbe.FailureThreshold, int32(3),
				"probe path", c.LivenessProbe.HTTPGet.Path, "/",
				"probe scheme", c.LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP,
				"configMap defaultMode", *s.Volumes[0].ConfigMap.DefaultMode, int32(0o644),
				"volume without source", s.Volumes[1].EmptyDir != nil, true,
			)
		}},
	{kind: "ReplicationController",
		valid:   "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  template:\n    metadata: {labels: {app: rc}}" + podSpec + "\n",
		invalid: "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  selector: {app: other}\n  template:\n    metadata: {labels: {app: rc}}" + podSpec + "\n",
		wantErr: "does not match the template's labels",
		defaults: func(o runtime.Object) []string {
			rc := o.(*corev1.ReplicationController)
			return diffs("replicas", *rc.Spec.Replicas, int32(1), "selector from template", rc.Spec.Selector["app"], "rc",
				"labels from template", rc.Labels["app"], "rc")
		}},
	{kind: "Service",
		valid:   "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
		invalid: "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: Internal\n  ports: [{port: 80}]\n",
		wantErr: "spec.type: must be ClusterIP, NodePort, LoadBalancer or ExternalName",
		defaults: func(o runtime.Object) []string {
			s := o.(*corev1.Service).Spec
			return diffs("type", s.Type, corev1.ServiceTypeClusterIP, "sessionAffinity", s.SessionAffinity, corev1.ServiceAffinityNone,
				"protocol", s.Ports[0].Protocol, corev1.ProtocolTCP, "targetPort", s.Ports[0].TargetPort, intstr.FromInt32(80))
		}},
	{kind: "Endpoints",
		valid:   "apiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 5432}]}]\n",
		invalid: "apiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 0}]}]\n",
		wantErr: "subsets[0].ports[0].port: must be a port number",
		defaults: func(o runtime.Object) []string {
			return diffs("protocol", o.(*corev1.Endpoints).Subsets[0].Ports[0].Protocol, corev1.ProtocolTCP)
		}},
	{kind: "ConfigMap",
		valid:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {app.conf: x}\n",
		invalid: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {\"a b\": x}\n",
		wantErr: `data["a b"]: must be a key`},
	{kind: "Secret",
		valid:   "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: cGFzcw==}\n",
		invalid: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: not base64!}\n",
		wantErr: "data.password: must be base64-encoded",
		defaults: func(o runtime.Object) []string {
			s := o.(*corev1.Secret)
			return diffs("type", s.Type, corev1.SecretTypeOpaque, "decoded", string(s.Data["password"]), "pass")
		}},
	{kind: "PersistentVolumeClaim",
		valid:   "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
		invalid: "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteSometimes]\n",
		wantErr: "spec.accessModes[0]: must be ReadWriteOnce",
		defaults: func(o runtime.Object) []string {
			return diffs("volumeMode", *o.(*corev1.PersistentVolumeClaim).Spec.VolumeMode, corev1.PersistentVolumeFilesystem)
		}},
	{kind: "PersistentVolume",
		valid:   "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1}\nspec:\n  capacity: {storage: 10Gi}\n  accessModes: [ReadWriteOnce]\n  hostPath: {path: /srv/pv1}\n",
		invalid: "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1}\nspec:\n  capacity: {storage: ten}\n",
		wantErr: "spec.capacity.storage: must be a quantity",
		defaults: func(o runtime.Object) []string {
			return diffs("reclaimPolicy", o.(*corev1.PersistentVolume).Spec.PersistentVolumeReclaimPolicy, corev1.PersistentVolumeReclaimRetain)
		}},
	{kind: "ResourceQuota",
		valid:   "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {pods: \"10\", requests.cpu: \"4\"}}\n",
		invalid: "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {pods: lots}}\n",
		wantErr: "spec.hard.pods: must be a quantity"},
	{kind: "LimitRange",
		valid:   "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l}\nspec: {limits: [{type: Container, max: {memory: 1Gi}, default: {cpu: 500m}, min: {memory: 16Mi}}]}\n",
		invalid: "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l}\nspec: {limits: [{default: {cpu: 500m}}]}\n",
		wantErr: "spec.limits[0].type: required field is missing",
		defaults: func(o runtime.Object) []string {
			l := o.(*corev1.LimitRange).Spec.Limits[0]
			mem, cpu := l.Default[corev1.ResourceMemory], l.DefaultRequest[corev1.ResourceCPU]
			reqMem := l.DefaultRequest[corev1.ResourceMemory]
			return diffs("default memory from max", mem.String(), "1Gi", "defaultRequest cpu from default", cpu.String(), "500m",
				"defaultRequest memory from default", reqMem.String(), "1Gi")
		}},
	{kind: "ServiceAccount",
		valid:   "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n",
		invalid: "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot, labels: {\"-x\": y}}\n",
		wantErr: `metadata.labels["-x"]: must be a label key`},
	{kind: "Deployment",
		valid:   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}" + podSpec + "\n",
		invalid: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: api}}" + podSpec + "\n",
		wantErr: `spec.selector: selector "app=web" does not match the template's labels "app=api"`,
		defaults: func(o runtime.Object) []string {
			s := o.(*appsv1.Deployment).Spec
			return diffs("replicas", *s.Replicas, int32(1), "strategy", s.Strategy.Type, appsv1.RollingUpdateDeploymentStrategyType,
				"maxSurge", *s.Strategy.RollingUpdate.MaxSurge, intstr.FromString("25%"),
				"maxUnavailable", *s.Strategy.RollingUpdate.MaxUnavailable, intstr.FromString("25%"),
				"revisionHistoryLimit", *s.RevisionHistoryLimit, int32(10), "progressDeadlineSeconds", *s.ProgressDeadlineSeconds, int32(600),
				"restartPolicy", s.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways,
				"imagePullPolicy (tagged)", s.Template.Spec.Containers[0].ImagePullPolicy, corev1.PullIfNotPresent)
		}},
	{kind: "ReplicaSet",
		valid:   "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n  selector: {matchExpressions: [{key: app, operator: In, values: [web]}]}\n  template:\n    metadata: {labels: {app: web}}" + podSpec + "\n",
		invalid: "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n  template:\n    metadata: {labels: {app: web}}" + podSpec + "\n",
		wantErr: "spec.selector: required field is missing",
		defaults: func(o runtime.Object) []string {
			return diffs("replicas", *o.(*appsv1.ReplicaSet).Spec.Replicas, int32(1))
		}},
	{kind: "StatefulSet",
		valid:   "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}" + podSpec + "\n",
		invalid: "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  podManagementPolicy: AllAtOnce\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}" + podSpec + "\n",
		wantErr: "spec.podManagementPolicy: must be OrderedReady or Parallel",
		defaults: func(o runtime.Object) []string {
			s := o.(*appsv1.StatefulSet).Spec
			return diffs("replicas", *s.Replicas, int32(1), "podManagementPolicy", s.PodManagementPolicy, appsv1.OrderedReadyPodManagement,
				"updateStrategy", s.UpdateStrategy.Type, appsv1.RollingUpdateStatefulSetStrategyType,
				"partition", *s.UpdateStrategy.RollingUpdate.Partition, int32(0), "revisionHistoryLimit", *s.RevisionHistoryLimit, int32(10))
		}},
	{kind: "DaemonSet",
		valid:   "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}" + podSpec + "\n",
		invalid: "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      restartPolicy: OnFailure\n      containers: [{name: app, image: busybox}]\n",
		wantErr: "spec.template.spec.restartPolicy: must be Always",
		defaults: func(o runtime.Object) []string {
			s := o.(*appsv1.DaemonSet).Spec
			return diffs("updateStrategy", s.UpdateStrategy.Type, appsv1.RollingUpdateDaemonSetStrategyType,
				"maxUnavailable", *s.UpdateStrategy.RollingUpdate.MaxUnavailable, intstr.FromInt32(1))
		}},
	{kind: "Job",
		valid:   "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:" + jobPodSpec + "\n",
		invalid: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers: [{name: app, image: busybox}]\n",
		wantErr: "spec.template.spec.restartPolicy: must be OnFailure or Never",
		defaults: func(o runtime.Object) []string {
			s := o.(*batchv1.Job).Spec
			return diffs("completions", *s.Completions, int32(1), "parallelism", *s.Parallelism, int32(1), "backoffLimit", *s.BackoffLimit, int32(6),
				"completionMode", *s.CompletionMode, batchv1.NonIndexedCompletion, "restartPolicy kept", s.Template.Spec.RestartPolicy, corev1.RestartPolicyNever)
		}},
	{kind: "CronJob",
		valid:   "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: app, image: busybox}]\n",
		invalid: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: app, image: busybox}]\n",
		wantErr: "spec.schedule: required field is missing",
		defaults: func(o runtime.Object) []string {
			s := o.(*batchv1.CronJob).Spec
			return diffs("concurrencyPolicy", s.ConcurrencyPolicy, batchv1.AllowConcurrent, "successfulJobsHistoryLimit", *s.SuccessfulJobsHistoryLimit, int32(3),
				"failedJobsHistoryLimit", *s.FailedJobsHistoryLimit, int32(1), "job backoffLimit", *s.JobTemplate.Spec.BackoffLimit, int32(6))
		}},
	{kind: "HorizontalPodAutoscaler",
		valid:   "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 5\n",
		invalid: "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n",
		wantErr: "spec.maxReplicas: required field is missing",
		defaults: func(o runtime.Object) []string {
			s := o.(*autoscalingv2.HorizontalPodAutoscaler).Spec
			return diffs("minReplicas", *s.MinReplicas, int32(1), "default metric", *s.Metrics[0].Resource.Target.AverageUtilization, int32(80))
		}},
	{kind: "Ingress",
		valid:   "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - host: example.com\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n",
		invalid: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Glob, backend: {service: {name: web, port: {number: 80}}}}\n",
		wantErr: "spec.rules[0].http.paths[0].pathType: must be Exact, Prefix or ImplementationSpecific",
		defaults: func(o runtime.Object) []string {
			return diffs("backend port", o.(*networkingv1.Ingress).Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Number, int32(80))
		}},
	{kind: "StorageClass",
		valid:   "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: rancher.io/local-path\n",
		invalid: "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: x\nvolumeBindingMode: Later\n",
		wantErr: "volumeBindingMode: must be Immediate or WaitForFirstConsumer",
		defaults: func(o runtime.Object) []string {
			sc := o.(*storagev1.StorageClass)
			return diffs("reclaimPolicy", *sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete, "volumeBindingMode", *sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)
		}},
	{kind: "NodePolicy", // more cases in nodepolicy_test.go
		valid:   "apiVersion: keelson.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: db}\nspec:\n  nodeSelector: {matchLabels: {disk: ssd}}\n  taints: [{key: dedicated, value: db, effect: NoSchedule}]\n",
		invalid: "apiVersion: keelson.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: db}\nspec:\n  unschedulable: true\n",
		wantErr: "spec: nodeNames or nodeSelector is required"},
	{kind: "HelmChart", // more cases in helmchart_test.go
		valid:   "apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: web, namespace: shop}\nspec:\n  chart: ../charts/web\n  values: {replicas: 2}\n",
		invalid: "apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: web, namespace: shop}\nspec:\n  chart: ../charts/web\n  targetNamespace: Shop\n",
		wantErr: "spec.targetNamespace: must be a DNS label"},
}

// diffs compares name, got, want triples and describes each mismatch.
func diffs(triples ...any) []string {
	var out []string
	for i := 0; i+2 < len(triples); i += 3 {
		if !reflect.DeepEqual(triples[i+1], triples[i+2]) {
			out = append(out, fmt.Sprintf("%s: got %v, want %v", triples[i], triples[i+1], triples[i+2]))
		}
	}
	return out
}

func TestEveryKindHasCases(t *testing.T) {
	have := map[string]bool{}
	for _, c := range append(kindCases, storedKindCases...) {
		have[c.kind] = true
	}
	for i := range supported {
		if k := supported[i].kind; !have[k] {
			t.Errorf("kind %s has no test case", k)
		}
	}
}

func TestKinds(t *testing.T) {
	for _, c := range append(kindCases, storedKindCases...) {
		t.Run(c.kind, func(t *testing.T) {
			objs, errs := validate(t, "k.yaml", c.valid)
			if len(errs) > 0 || len(objs) != 1 {
				t.Fatalf("valid manifest rejected:\n%s", strings.Join(errs, "\n"))
			}
			if objs[0].Kind != c.kind {
				t.Fatalf("kind %q, want %q", objs[0].Kind, c.kind)
			}
			if c.defaults != nil {
				for _, d := range c.defaults(objs[0].Object) {
					t.Errorf("default %s", d)
				}
			}
			objs, errs = validate(t, "k.yaml", c.invalid)
			if len(objs) != 0 || len(errs) == 0 {
				t.Fatalf("invalid manifest accepted")
			}
			if !strings.Contains(strings.Join(errs, "\n"), c.wantErr) {
				t.Errorf("errors:\n%s\nwant one containing %q", strings.Join(errs, "\n"), c.wantErr)
			}
		})
	}
}

// The numbers and names of a StatefulSet's spec that its controller relies
// on are checked as the Kubernetes API checks them.
func TestStatefulSetFields(t *testing.T) {
	base := "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}" + podSpec + "\n"
	for _, tc := range []struct{ field, want string }{
		{"  revisionHistoryLimit: -1\n", "spec.revisionHistoryLimit"},
		{"  minReadySeconds: -5\n", "spec.minReadySeconds"},
		{"  ordinals: {start: -1}\n", "spec.ordinals.start"},
		{"  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: -2}}\n", "spec.updateStrategy.rollingUpdate.partition"},
		{"  persistentVolumeClaimRetentionPolicy: {whenScaled: Keep}\n", "spec.persistentVolumeClaimRetentionPolicy.whenScaled: must be Retain or Delete"},
	} {
		objs, errs := validate(t, "k.yaml", base+tc.field)
		if len(objs) != 0 || !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%q: errors %q, want one naming %s", tc.field, errs, tc.want)
		}
	}
	if objs, errs := validate(t, "k.yaml", base+"  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}\n  ordinals: {start: 1}\n"); len(objs) != 1 {
		t.Errorf("valid fields refused: %q", errs)
	}
}
