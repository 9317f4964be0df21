package apiserver_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func TestTableColumnsAsKubectlShows(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	p := pod("default", "web-1", nil, "n1", corev1.PodRunning)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, RestartCount: 2}}
	if err := ts.st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	replicas := int32(3)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:   appsv1.DeploymentSpec{Replicas: &replicas},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2}}
	if err := ts.st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	start := metav1.NewTime(time.Now().Add(-90 * time.Second))
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "migrate"},
		Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](3)},
		Status: batchv1.JobStatus{Succeeded: 1, StartTime: &start, CompletionTime: &metav1.Time{Time: start.Add(65 * time.Second)},
			Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	if err := ts.st.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	last := metav1.NewTime(time.Now().Add(-3 * time.Hour))
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nightly"},
		Spec:   batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr.To("Europe/Paris")},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "nightly-1"}}, LastScheduleTime: &last}}
	if err := ts.st.Create(ctx, cron); err != nil {
		t.Fatal(err)
	}
	dset := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "logs"},
		Spec:   appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}}},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2}}
	if err := ts.st.Create(ctx, dset); err != nil {
		t.Fatal(err)
	}
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "compute"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10"),
			corev1.ResourceRequestsCPU: resource.MustParse("1"), corev1.ResourceLimitsMemory: resource.MustParse("2Gi")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3"),
			corev1.ResourceRequestsCPU: resource.MustParse("300m")}}}
	if err := ts.st.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	minAvailable := intstr.FromString("50%")
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable}, Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 2}}
	if err := ts.st.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "readers"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}, {Kind: rbacv1.GroupKind, Name: "devs"},
			{Kind: rbacv1.ServiceAccountKind, Name: "web"}, {Kind: rbacv1.ServiceAccountKind, Namespace: "ops", Name: "bot"}}}
	if err := ts.st.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	cs := ts.client(t, "admin-token")
	cases := []struct {
		path    string
		columns []string
		cells   []any
	}{
		{"/api/v1/namespaces/default/pods", []string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node"},
			[]any{"web-1", "1/1", "Running", "2"}},
		{"/api/v1/namespaces/default/pods/web-1", nil, []any{"web-1", "1/1", "Running", "2"}},
		{"/apis/apps/v1/deployments", []string{"Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"},
			[]any{"web", "2/3", float64(3), float64(2)}},
		{"/apis/batch/v1/namespaces/default/jobs", []string{"Name", "Status", "Completions", "Duration", "Age"},
			[]any{"migrate", "Complete", "1/1 of 3", "65s"}},
		{"/apis/apps/v1/namespaces/default/daemonsets", []string{"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"},
			[]any{"logs", float64(3), float64(3), float64(2), float64(3), float64(2), "disk=ssd"}},
		{"/apis/batch/v1/namespaces/default/cronjobs", []string{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"},
			[]any{"nightly", "0 3 * * *", "Europe/Paris", "false", float64(1), "3h"}},
		{"/api/v1/namespaces/default/resourcequotas", []string{"Name", "Age", "Request", "Limit"},
			[]any{"compute", nil, "pods: 3/10, requests.cpu: 300m/1", "limits.memory: 0/2Gi"}}, // nil: any age
		{"/apis/policy/v1/namespaces/default/poddisruptionbudgets", []string{"Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"},
			[]any{"web", "50%", "N/A", float64(2)}},
		{"/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", []string{"Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"},
			[]any{"readers", "ClusterRole/view", nil, "alice", "devs", "/web, ops/bot"}}, // as kubectl: the subject's namespace, empty or not,
		{"/api/v1/namespaces/default/serviceaccounts", []string{"Name", "Secrets", "Age"}, []any{"web", float64(0)}},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			b, err := cs.CoreV1().RESTClient().Get().AbsPath(c.path).SetHeader("Accept", tableAccept).DoRaw(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var tbl metav1.Table
			if err := json.Unmarshal(b, &tbl); err != nil {
				t.Fatal(err)
			}
			if tbl.Kind != "Table" || len(tbl.Rows) != 1 {
				t.Fatalf("got kind %q with %d rows: %s", tbl.Kind, len(tbl.Rows), b)
			}
			var cols []string
			for _, d := range tbl.ColumnDefinitions {
				cols = append(cols, d.Name)
			}
			if c.columns != nil && !slices.Equal(cols, c.columns) {
				t.Errorf("columns %v, want %v", cols, c.columns)
			}
			for i, want := range c.cells {
				if got := tbl.Rows[0].Cells[i]; want != nil && got != want {
					t.Errorf("cell %s = %#v, want %#v", cols[i], got, want)
				}
			}
			if !strings.Contains(string(tbl.Rows[0].Object.Raw), `"namespace":"default"`) {
				t.Errorf("row object %s lacks the namespace", tbl.Rows[0].Object.Raw)
			}
		})
	}
	pretty, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default/pods/web-1").Param("pretty", "true").DoRaw(ctx)
	if err != nil || !strings.Contains(string(pretty), "\n  \"metadata\": {") {
		t.Fatalf("pretty get: %v %s", err, pretty)
	}
}
