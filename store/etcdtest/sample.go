package etcdtest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SamplePod is a pod of realistic size (about 1.5 KB of JSON), scheduled and
// running, as a controller-made pod looks in a real cluster: the object the
// store and API benchmarks read and write.
func SamplePod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels:      map[string]string{"app": "web", "pod-template-hash": "7d9c5b8f6", "tier": "frontend"},
			Annotations: map[string]string{"keelson.dev/revision": "3f2a1c9e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9c5b8f6", UID: "2b1f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
			}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name: "web", Image: "localhost/busybox:latest",
				Command: []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:     []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "www", MountPath: "/www"}},
			}},
			Volumes: []corev1.Volume{{Name: "www", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-content"}},
			}}},
			RestartPolicy: corev1.RestartPolicyAlways,
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  "10.42.0.17",
			HostIP: "192.168.1.10",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Ready: true, Image: "localhost/busybox:latest", ImageID: "sha256:4b5c8e2f"}},
		},
	}
}
