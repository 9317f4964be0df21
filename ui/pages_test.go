package ui_test

import (
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// TestTreeShortened: under one object the tree shows the worst 50 and says
// what the rest are, with a search for all of them.
func TestTreeShortened(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 60)
	c := e.signedIn(t, adminToken)
	code, body := e.get(t, c, "/ui/sources/apps")
	if code != http.StatusOK {
		t.Fatalf("source: %d\n%s", code, body)
	}
	if n := strings.Count(body, `href="/ui/pods/shop/`); n != 100 {
		t.Errorf("%d pod links, want 50 under the ReplicaSet and 50 behind the Service", n)
	}
	// Under the ReplicaSet, a search for the rest; under the slice, none
	// (a slice selects no pods by label).
	if !strings.Contains(body, `<a href="/ui/search?q=app%3Dweb">10 more Pods</a>: <span class="info">`) ||
		!strings.Contains(body, `<li class="more">10 more Pods: `) {
		t.Errorf("no lines for the 10 pods left out:\n%s", body)
	}
	// The counts are of every object once, those left out too: a
	// namespace, a Deployment, a ReplicaSet, a Service, a slice, 60 pods.
	counts := regexp.MustCompile(`</span> (\d+) `).FindAllStringSubmatch(body[strings.Index(body, `class="counts"`):], -1)
	sum := 0
	for _, m := range counts {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	if sum != 65 {
		t.Errorf("counts add up to %d, want 65", sum)
	}
}

// TestTreeStatefulSetAndCronJob: StatefulSet → Pods → claims, and
// CronJob → Jobs → Pods.
func TestTreeStatefulSetAndCronJob(t *testing.T) {
	e := newEnv(t)
	src := map[string]string{keelsonv1alpha1.LabelSource: "data"}
	e.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "data"}})
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "db", Labels: src},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, ServiceName: "db",
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "localhost/busybox:latest"}}}}}}
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "backup", Labels: src},
		Spec: batchv1.CronJobSpec{Schedule: "@hourly", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "b", Image: "localhost/busybox:latest"}}}}}}}}
	e.create(t, sts, cron)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "backup-29000000",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "backup", UID: cron.UID, Controller: ptr.To(true)}}},
		Spec: cron.Spec.JobTemplate.Spec}
	e.create(t, job)
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "data-db-0"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	dbPod := newPod("data", "db-0")
	dbPod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: sts.UID, Controller: ptr.To(true)}}
	dbPod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}}}
	jobPod := newPod("data", "backup-29000000-x7k2p")
	jobPod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}
	e.create(t, claim, dbPod, jobPod)
	s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: keelsonv1alpha1.SyncSpec{URL: "file:///srv/git/data"}}
	e.create(t, s)
	s.Status.Inventory = []keelsonv1alpha1.ObjectRef{{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "data", Name: "db"},
		{APIVersion: "batch/v1", Kind: "CronJob", Namespace: "data", Name: "backup"}}
	if err := e.st.UpdateStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t, e.signedIn(t, adminToken), "/ui/sources/data")
	var kinds []string
	for _, m := range regexp.MustCompile(`class="kind">(\w+)<`).FindAllStringSubmatch(body, -1) {
		kinds = append(kinds, m[1])
	}
	if got, want := strings.Join(kinds, " "), "StatefulSet Pod PersistentVolumeClaim CronJob Job Pod"; got != want {
		t.Errorf("tree kinds\n got %s\nwant %s", got, want)
	}
	for _, want := range []string{"data/data-db-0", `href="/ui/pods/data/db-0"`, "data/backup-29000000", `href="/ui/pods/data/backup-29000000-x7k2p"`} {
		if !strings.Contains(body, want) {
			t.Errorf("tree lacks %q", want)
		}
	}
}

// TestObjectPage: any object but a Secret has a page: its health, its file
// and line in Git linked at the revision that wrote it, its owner, its
// conditions, events and the object as the API serves it.
func TestObjectPage(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 1)
	var dep appsv1.Deployment
	if err := e.st.Get(t.Context(), "shop", "web", &dep); err != nil {
		t.Fatal(err)
	}
	dep.Annotations = map[string]string{keelsonv1alpha1.AnnotationOrigin: "deploy/web.yaml:3", keelsonv1alpha1.AnnotationRevision: "1111111111111111111111111111111111111111"}
	if err := e.st.Update(t.Context(), &dep); err != nil {
		t.Fatal(err)
	}
	dep.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", Message: "rolled out"}}
	if err := e.st.UpdateStatus(t.Context(), &dep); err != nil {
		t.Fatal(err)
	}
	// Its event, and one of an earlier Deployment of the same name.
	e.create(t, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web.1"}, Type: "Normal", Reason: "ScalingReplicaSet",
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "shop", Name: "web", UID: dep.UID}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web.2"}, Type: "Normal", Reason: "OfAnEarlierOne",
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "shop", Name: "web", UID: "0ld"}})
	e.create(t, etcdNode("node-1"), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, StringData: map[string]string{"password": "hunter2"}})
	c := e.signedIn(t, adminToken)

	code, body := e.get(t, c, "/ui/objects/deployments.apps/shop/web")
	if code != http.StatusOK {
		t.Fatalf("deployment page: %d\n%s", code, body)
	}
	body = html.UnescapeString(body)
	for _, want := range []string{"Deployment shop/web", `href="/ui/sources/apps"`,
		`<a class="at" href="https://github.com/example/shop/blob/1111111111111111111111111111111111111111/deploy/web.yaml#L3" rel="noreferrer">deploy/web.yaml:3</a>`,
		"NewReplicaSetAvailable: rolled out", "kind: Deployment", "replicas: 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("deployment page lacks %q", want)
		}
	}
	if strings.Contains(body, "managedFields") {
		t.Error("the page shows managedFields")
	}
	if !strings.Contains(body, "ScalingReplicaSet") || strings.Contains(body, "OfAnEarlierOne") {
		t.Error("the page does not show its own events, and only those")
	}
	if code, body := e.get(t, c, "/ui/objects/replicasets.apps/shop/web-7d9c5b8f6"); code != http.StatusOK ||
		!strings.Contains(body, `<a href="/ui/objects/deployments.apps/shop/web">Deployment web</a>`) {
		t.Errorf("replica set page: %d, want a link to its Deployment\n%s", code, body)
	}
	if code, body := e.get(t, c, "/ui/objects/nodes/node-1"); code != http.StatusOK || !strings.Contains(body, "Node node-1") {
		t.Errorf("node page: %d\n%s", code, body)
	}
	for _, path := range []string{"/ui/objects/secrets/shop/db", "/ui/objects/deployments.apps/web", "/ui/objects/nodes/shop/node-1", "/ui/objects/nope/shop/x"} {
		if code, body := e.get(t, c, path); code != http.StatusNotFound || strings.Contains(body, "hunter2") {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	if code, _ := e.get(t, c, "/ui/objects/pods/shop/web-7d9c5b8f6-a"); code != http.StatusFound {
		t.Errorf("a pod's object page: %d, want a redirect to the pod page", code)
	}
	// The tree links each object to its page.
	if _, body := e.get(t, c, "/ui/sources/apps"); !strings.Contains(body, `href="/ui/objects/deployments.apps/shop/web"`) ||
		!strings.Contains(body, `href="/ui/objects/endpointslices.discovery.k8s.io/shop/web-abcde"`) {
		t.Errorf("the tree does not link objects to their pages")
	}
}

func TestNodesPage(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 3) // pods bound to node-1
	e.create(t, etcdNode("node-1"))
	c := e.signedIn(t, adminToken)
	code, body := e.get(t, c, "/ui/nodes")
	if code != http.StatusOK {
		t.Fatalf("nodes: %d\n%s", code, body)
	}
	for _, want := range []string{`id="node-node-1"`, "Ready", `<meter min="0" max="110" value="3"`, "3 of 110 (2%)",
		"2 cores (usage not reported)", "24.0 GiB (usage not reported)"} {
		if !strings.Contains(body, want) {
			t.Errorf("nodes page lacks %q:\n%s", want, body)
		}
	}
}

// TestTreeIngressOfAClassOfKeelsons: an Ingress whose class is keelson's
// controller's under a name of its own is waiting for the proxy's
// addresses, not Unsupported: the tree reads the IngressClasses.
func TestTreeIngressOfAClassOfKeelsons(t *testing.T) {
	e := newEnv(t)
	e.create(t, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: networkingv1.IngressClassSpec{Controller: "keelson.dev/ingress"}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "inside", Labels: map[string]string{keelsonv1alpha1.LabelSource: "net"}},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("internal"),
				DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}})
	s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "net"}, Spec: keelsonv1alpha1.SyncSpec{URL: "file:///srv/git/net"}}
	e.create(t, s)
	s.Status.Inventory = []keelsonv1alpha1.ObjectRef{{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "default", Name: "inside"}}
	if err := e.st.UpdateStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t, e.signedIn(t, adminToken), "/ui/sources/net")
	if !strings.Contains(body, `<li class="hl-progressing">`) || strings.Contains(body, "Unsupported") {
		t.Errorf("the Ingress of class internal is not Progressing:\n%s", body)
	}
}
