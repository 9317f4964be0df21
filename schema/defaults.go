package schema

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// setDefaults fills in what the Kubernetes API server fills in on create
// (k8s.io/kubernetes/pkg/apis/*/v1/defaults.go), so that what keelson stores is
// what will run and `keelson plan` can show it. Only fields that keelson's
// controllers and agents read are defaulted, and for the kinds keelson
// stores without acting on them, the few that kubectl shows
// (setStoredDefaults).
func setDefaults(obj runtime.Object) {
	setStoredDefaults(obj)
	switch o := obj.(type) {
	case *corev1.Pod:
		defaultPodSpec(&o.Spec, corev1.RestartPolicyAlways)
	case *corev1.ReplicationController:
		if o.Spec.Template != nil {
			if len(o.Spec.Selector) == 0 {
				o.Spec.Selector = o.Spec.Template.Labels
			}
			if len(o.Labels) == 0 {
				o.Labels = o.Spec.Template.Labels
			}
			defaultPodSpec(&o.Spec.Template.Spec, corev1.RestartPolicyAlways)
		}
		o.Spec.Replicas = orInt32(o.Spec.Replicas, 1)
	case *appsv1.Deployment:
		defaultDeployment(o)
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = orInt32(o.Spec.Replicas, 1)
		defaultPodSpec(&o.Spec.Template.Spec, corev1.RestartPolicyAlways)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
	case *batchv1.Job:
		defaultJobSpec(&o.Spec)
	case *batchv1.CronJob:
		defaultCronJob(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Endpoints:
		for i := range o.Subsets {
			for j := range o.Subsets[i].Ports {
				if o.Subsets[i].Ports[j].Protocol == "" {
					o.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
				}
			}
		}
	case *corev1.Namespace:
		if o.Status.Phase == "" {
			o.Status.Phase = corev1.NamespaceActive
		}
	case *corev1.LimitRange:
		for i := range o.Spec.Limits {
			defaultLimitRangeItem(&o.Spec.Limits[i])
		}
	case *corev1.Secret:
		if o.Type == "" {
			o.Type = corev1.SecretTypeOpaque
		}
	case *corev1.PersistentVolumeClaim:
		if o.Spec.VolumeMode == nil {
			m := corev1.PersistentVolumeFilesystem
			o.Spec.VolumeMode = &m
		}
	case *corev1.PersistentVolume:
		if o.Spec.PersistentVolumeReclaimPolicy == "" {
			o.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
		}
		if o.Spec.VolumeMode == nil {
			m := corev1.PersistentVolumeFilesystem
			o.Spec.VolumeMode = &m
		}
	case *storagev1.StorageClass:
		if o.ReclaimPolicy == nil {
			p := corev1.PersistentVolumeReclaimDelete
			o.ReclaimPolicy = &p
		}
		if o.VolumeBindingMode == nil {
			m := storagev1.VolumeBindingImmediate
			o.VolumeBindingMode = &m
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.Spec.MinReplicas = orInt32(o.Spec.MinReplicas, 1)
		if len(o.Spec.Metrics) == 0 {
			o.Spec.Metrics = []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
				},
			}}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func orInt32(p *int32, v int32) *int32 {
	if p != nil {
		return p
	}
	return &v
}

// defaultLimitRangeItem: for containers, the default limit falls back to the
// max, and the default request to the default limit, then to the min.
func defaultLimitRangeItem(item *corev1.LimitRangeItem) {
	if item.Type != corev1.LimitTypeContainer {
		return
	}
	if item.Default == nil {
		item.Default = corev1.ResourceList{}
	}
	if item.DefaultRequest == nil {
		item.DefaultRequest = corev1.ResourceList{}
	}
	fill := func(dst, src corev1.ResourceList) {
		for k, v := range src {
			if _, ok := dst[k]; !ok {
				dst[k] = v.DeepCopy()
			}
		}
	}
	fill(item.Default, item.Max)
	fill(item.DefaultRequest, item.Default)
	fill(item.DefaultRequest, item.Min)
}

func defaultDeployment(o *appsv1.Deployment) {
	s := &o.Spec
	s.Replicas = orInt32(s.Replicas, 1)
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		quarter := intstr.FromString("25%")
		if s.Strategy.RollingUpdate.MaxUnavailable == nil {
			s.Strategy.RollingUpdate.MaxUnavailable = ptr(quarter)
		}
		if s.Strategy.RollingUpdate.MaxSurge == nil {
			s.Strategy.RollingUpdate.MaxSurge = ptr(quarter)
		}
	}
	s.RevisionHistoryLimit = orInt32(s.RevisionHistoryLimit, 10)
	s.ProgressDeadlineSeconds = orInt32(s.ProgressDeadlineSeconds, 600)
	defaultPodSpec(&s.Template.Spec, corev1.RestartPolicyAlways)
}

func defaultStatefulSet(o *appsv1.StatefulSet) {
	s := &o.Spec
	s.Replicas = orInt32(s.Replicas, 1)
	if s.PodManagementPolicy == "" {
		s.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		s.UpdateStrategy.RollingUpdate.Partition = orInt32(s.UpdateStrategy.RollingUpdate.Partition, 0)
	}
	if s.PersistentVolumeClaimRetentionPolicy == nil {
		s.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		s.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	s.RevisionHistoryLimit = orInt32(s.RevisionHistoryLimit, 10)
	defaultPodSpec(&s.Template.Spec, corev1.RestartPolicyAlways)
}

func defaultDaemonSet(o *appsv1.DaemonSet) {
	s := &o.Spec
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
			s.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(1))
		}
		if s.UpdateStrategy.RollingUpdate.MaxSurge == nil {
			s.UpdateStrategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(0))
		}
	}
	s.RevisionHistoryLimit = orInt32(s.RevisionHistoryLimit, 10)
	defaultPodSpec(&s.Template.Spec, corev1.RestartPolicyAlways)
}

func defaultJobSpec(s *batchv1.JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions, s.Parallelism = ptr(int32(1)), ptr(int32(1))
	}
	s.Parallelism = orInt32(s.Parallelism, 1)
	s.BackoffLimit = orInt32(s.BackoffLimit, 6)
	if s.CompletionMode == nil {
		s.CompletionMode = ptr(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptr(false)
	}
	if s.ManualSelector == nil {
		s.ManualSelector = ptr(false)
	}
	if s.PodReplacementPolicy == nil {
		s.PodReplacementPolicy = ptr(batchv1.TerminatingOrFailed)
	}
	defaultPodSpec(&s.Template.Spec, "")
}

func defaultCronJob(o *batchv1.CronJob) {
	s := &o.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptr(false)
	}
	s.SuccessfulJobsHistoryLimit = orInt32(s.SuccessfulJobsHistoryLimit, 3)
	s.FailedJobsHistoryLimit = orInt32(s.FailedJobsHistoryLimit, 1)
	defaultJobSpec(&s.JobTemplate.Spec)
}

func defaultService(o *corev1.Service) {
	s := &o.Spec
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	if s.Type != corev1.ServiceTypeExternalName && s.InternalTrafficPolicy == nil {
		s.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == (intstr.IntOrString{}) {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
}

// defaultPodSpec fills a pod spec; restartPolicy is left alone when "" (Jobs
// must say OnFailure or Never themselves).
func defaultPodSpec(s *corev1.PodSpec, restartPolicy corev1.RestartPolicy) {
	if s.RestartPolicy == "" {
		s.RestartPolicy = restartPolicy
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = ptr(int64(30))
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = corev1.DNSClusterFirst
	}
	if s.SchedulerName == "" {
		s.SchedulerName = corev1.DefaultSchedulerName
	}
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	if s.EnableServiceLinks == nil {
		s.EnableServiceLinks = ptr(true)
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i])
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i])
	}
	for i := range s.Volumes {
		defaultVolume(&s.Volumes[i].VolumeSource)
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
}

// pullPolicy is Kubernetes' rule: Always for :latest or no tag, else IfNotPresent.
func pullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = corev1.URISchemeHTTP
		}
	}
}

func defaultVolume(v *corev1.VolumeSource) {
	mode := ptr(corev1.ConfigMapVolumeSourceDefaultMode)
	switch {
	case v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil:
		v.ConfigMap.DefaultMode = mode
	case v.Secret != nil && v.Secret.DefaultMode == nil:
		v.Secret.DefaultMode = mode
	case v.HostPath != nil && v.HostPath.Type == nil:
		v.HostPath.Type = ptr(corev1.HostPathUnset)
	case *v == corev1.VolumeSource{}:
		// A volume with no source is an emptyDir, as in Kubernetes.
		v.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
}
