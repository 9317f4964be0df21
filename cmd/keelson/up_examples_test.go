package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// failingJob exits 3 every time; with backoffLimit 1 it makes two pods.
const failingJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: flaky
  namespace: jobs
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 5
      containers:
      - name: try
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "echo trying; exit 3"]
`

// TestUpRunsExamples runs examples/ as make demo does, with keelson up on a
// Git repository holding a copy of it, and checks that every example does
// what its README says: hello's 3 pods Ready serving the page, the sidecar
// shipping the app's log, the ambassador reaching the backend, the adapter
// serving metrics, cue's two apps from one definition serving their pages,
// daemonset's pod on the node logging its name, jobs' Indexed Job
// completing every frame and its CronJob's first run (and a failing Job stopping at
// its backoff limit),
// helm's chart rendered with its values and serving its page, kustomize's
// production overlay serving the shop, and config's files following a
// commit while its environment stays.
func TestUpRunsExamples(t *testing.T) {
	u := newUpFixture(t)
	if err := os.CopyFS(filepath.Join(u.repo, "examples"), os.DirFS(examplesDir)); err != nil {
		t.Fatal(err)
	}
	// The ambassador's backend listens on the node's network: a port free
	// here, so that examples running elsewhere on this machine do not clash.
	port := strings.Split(freeAddr(t), ":")[1]
	for _, f := range []string{"backend.yaml", "app.yaml"} {
		path := filepath.Join(u.repo, "examples", "patterns", "ambassador", f)
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "18080") {
			t.Fatalf("%s: want port 18080 in it (%v)", path, err)
		}
		os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "18080", port)), 0o644)
	}
	// The web tier's node port, likewise: one that a demo on this machine
	// (30080) does not hold.
	nodePort := fmt.Sprint(31000 + os.Getpid()%1500)
	web := filepath.Join(u.repo, "examples", "two-tier", "web.yaml")
	if b, err := os.ReadFile(web); err != nil || !strings.Contains(string(b), "nodePort: 30080") {
		t.Fatalf("%s: want nodePort 30080 in it (%v)", web, err)
	} else {
		os.WriteFile(web, []byte(strings.ReplaceAll(string(b), "nodePort: 30080", "nodePort: "+nodePort)), 0o644)
	}
	// Beside the jobs example, a Job that always fails: it stops at its
	// backoff limit.
	if err := os.WriteFile(filepath.Join(u.repo, "examples", "jobs", "failing.yaml"), []byte(failingJob), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, u.repo, "add", "examples")
	gitRun(t, u.repo, "commit", "-q", "-m", "examples")

	up := u.start(t, u.repo, "--path", "examples")
	u.waitPods(t, up, 25) // hello 3, sidecar 1, ambassador 2, adapter 1, config 1, two-tier 4, cue 3, helm 2, kustomize 4, daemonset 1, statefulset 3; Jobs' pods apart

	t.Run("hello", func(t *testing.T) {
		var pods []corev1.Pod
		for _, p := range u.pods(t, "app.kubernetes.io/name=web") {
			if p.Namespace == "hello" {
				pods = append(pods, p)
			}
		}
		if len(pods) != 3 {
			t.Fatalf("%d hello pods, want 3", len(pods))
		}
		for _, p := range pods {
			if !podReady(&p) {
				t.Errorf("pod %s/%s: want Ready", p.Namespace, p.Name)
			}
			eventuallyOut(t, "the page from "+p.Name, func() (string, bool) {
				body, err := httpGet("http://" + p.Status.PodIP + ":8080/")
				return body, err == nil && strings.Contains(body, "<h1>Hello from keelson</h1>")
			})
		}
	})
	t.Run("sidecar", func(t *testing.T) {
		pod := u.onePod(t, "sidecar")
		eventuallyOut(t, "the shipper's log", func() (string, bool) {
			out, err := u.keelson("logs", "-n", "sidecar", pod, "-c", "shipper")
			return out, err == nil && strings.Contains(out, "shipped: ") && strings.Contains(out, " served request ")
		})
	})
	t.Run("ambassador", func(t *testing.T) {
		pod := u.onePod(t, "ambassador")
		eventuallyOut(t, "the app's log", func() (string, bool) {
			out, err := u.keelson("logs", "-n", "ambassador", pod, "-c", "app")
			return out, err == nil && strings.Contains(out, "app got: hello from the backend on ")
		})
	})
	t.Run("adapter", func(t *testing.T) {
		pods := u.pods(t, "app.kubernetes.io/name=app")
		for _, p := range pods {
			if p.Namespace != "adapter" {
				continue
			}
			eventuallyOut(t, "the adapter's metrics", func() (string, bool) {
				body, err := httpGet("http://" + p.Status.PodIP + ":9100/metrics")
				return body, err == nil && strings.Contains(body, "app_requests_total ") && strings.Contains(body, "app_errors_total ")
			})
		}
	})
	t.Run("two-tier", func(t *testing.T) {
		node, err := u.client(t).CoreV1().Nodes().Get(t.Context(), "local", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nodeIP string
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				nodeIP = a.Address
			}
		}
		// The page from the node port: the web pod answered, and reached the
		// api by its name through cluster DNS and the api's cluster IP.
		seen := map[string]bool{}
		eventuallyOut(t, "both api pods, through the web tier on the node port", func() (string, bool) {
			body, err := httpGet("http://" + nodeIP + ":" + nodePort + "/")
			if err != nil || !strings.Contains(body, `"greeting": "hello from the api"`) {
				return body, false
			}
			if _, after, ok := strings.Cut(body, `"pod": "`); ok {
				seen[strings.Split(after, `"`)[0]] = true
			}
			return fmt.Sprintf("%s\napi pods seen: %v", body, seen), len(seen) == 2
		})
	})
	t.Run("cue", func(t *testing.T) {
		// Both apps of the CUE package run, each with the replicas #App gave
		// it, and serve their own page behind their own Service.
		for _, app := range []struct {
			name, page string
			replicas   int
		}{{"catalog", "<h1>The catalog</h1>", 2}, {"cart", "<h1>Your cart is empty</h1>", 1}} {
			var pods []corev1.Pod
			for _, p := range u.pods(t, "app.kubernetes.io/name="+app.name) {
				if p.Namespace == "cue-shop" {
					pods = append(pods, p)
				}
			}
			if len(pods) != app.replicas {
				t.Fatalf("%d %s pods in cue-shop, want %d", len(pods), app.name, app.replicas)
			}
			for _, p := range pods {
				eventuallyOut(t, app.name+"'s page from "+p.Name, func() (string, bool) {
					body, err := httpGet("http://" + p.Status.PodIP + ":8080/")
					return body, err == nil && strings.Contains(body, app.page)
				})
			}
			svc, err := u.client(t).CoreV1().Services("cue-shop").Get(t.Context(), app.name, metav1.GetOptions{})
			if err != nil || svc.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("service %s: %v %+v", app.name, err, svc)
			}
		}
	})
	t.Run("helm", func(t *testing.T) {
		// The chart's page, rendered with the values file and the
		// HelmChart's inline values, served by each of its 2 replicas.
		var pods []corev1.Pod
		for _, p := range u.pods(t, "app.kubernetes.io/name=greeter") {
			if p.Namespace == "helm" {
				pods = append(pods, p)
			}
		}
		if len(pods) != 2 {
			t.Fatalf("%d helm pods, want 2 (values/prod.yaml)", len(pods))
		}
		// The HelmChart itself is stored and served like any object.
		if out, err := u.keelson("get", "helmcharts.keelson.dev", "-n", "helm"); err != nil || !strings.Contains(out, "greeter") {
			t.Errorf("keelson get helmcharts: %v\n%s", err, out)
		}
		for _, p := range pods {
			eventuallyOut(t, "the chart's page from "+p.Name, func() (string, bool) {
				body, err := httpGet("http://" + p.Status.PodIP + ":8080/")
				return body, err == nil && strings.Contains(body, `<h1 style="color: teal">Hello from a Helm chart</h1>`) &&
					strings.Contains(body, "Rendered by keelson from chart greeter 0.1.0")
			})
		}
	})
	t.Run("kustomize", func(t *testing.T) {
		// The production overlay runs, with its replicas in its namespace,
		// and its catalog answers with the stage the overlay merged into
		// the base's generated settings; the staging overlay does not run.
		for name, want := range map[string]int{"storefront": 2, "catalog": 2} {
			var pods []corev1.Pod
			for _, p := range u.pods(t, "app.kubernetes.io/name="+name) {
				switch p.Namespace {
				case "shop-production":
					pods = append(pods, p)
				case "shop-staging":
					t.Errorf("pod %s/%s: only the production overlay should run", p.Namespace, p.Name)
				}
			}
			if len(pods) != want {
				t.Fatalf("%d %s pods in shop-production, want %d", len(pods), name, want)
			}
			for _, p := range pods {
				url, page := "http://"+p.Status.PodIP+":8080/", "<h1>keelson shop</h1>"
				if name == "catalog" {
					url, page = url+"cgi-bin/items", `"stage": "production"`
				}
				eventuallyOut(t, name+" from "+p.Name, func() (string, bool) {
					body, err := httpGet(url)
					return body, err == nil && strings.Contains(body, page)
				})
			}
		}
	})
	t.Run("daemonset", func(t *testing.T) {
		// One pod, on the one node, logging its name; the status counts it.
		pods := u.pods(t, "app.kubernetes.io/name=node-logger")
		if len(pods) != 1 || pods[0].Spec.NodeName != "local" {
			t.Fatalf("node-logger pods %v, want one on node local", pods)
		}
		eventuallyOut(t, "the logger's line", func() (string, bool) {
			out, err := u.keelson("logs", "-n", "daemonset", pods[0].Name)
			return out, err == nil && strings.Contains(out, "watching node local")
		})
		eventuallyOut(t, "the DaemonSet's status", func() (string, bool) {
			ds, err := u.client(t).AppsV1().DaemonSets("daemonset").Get(t.Context(), "node-logger", metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			s := ds.Status
			return fmt.Sprintf("%+v", s), s.DesiredNumberScheduled == 1 && s.NumberReady == 1 && s.UpdatedNumberScheduled == 1 && s.NumberAvailable == 1
		})
	})
	var renderUID types.UID
	t.Run("jobs", func(t *testing.T) {
		// The Indexed Job completes, each frame once, each pod's log
		// naming its own index; the failing Job stops at its backoff
		// limit with two pods, each of which exited 3.
		jobs := u.client(t).BatchV1().Jobs("jobs")
		eventuallyOut(t, "both Jobs finished", func() (string, bool) {
			out, _ := u.keelson("get", "jobs", "-n", "jobs")
			rows := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 3 {
					rows[f[0]] = f[1] + " " + f[2]
				}
			}
			return out, rows["render"] == "Complete 5/5" && rows["flaky"] == "Failed 0/1"
		})
		render, err := jobs.Get(t.Context(), "render", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		renderUID = render.UID
		if render.Status.Succeeded != 5 || render.Status.CompletedIndexes != "0-4" {
			t.Errorf("render: succeeded %d, completed indexes %q", render.Status.Succeeded, render.Status.CompletedIndexes)
		}
		seen := map[string]bool{}
		for _, p := range u.pods(t, "batch.kubernetes.io/job-name=render") {
			idx := p.Annotations["batch.kubernetes.io/job-completion-index"]
			if p.Status.Phase != corev1.PodSucceeded || seen[idx] {
				t.Errorf("pod %s: phase %s, index %s (seen %v)", p.Name, p.Status.Phase, idx, seen)
			}
			seen[idx] = true
			out, err := u.keelson("logs", "-n", "jobs", p.Name)
			if want := "frame " + idx + " rendered on render-" + idx; err != nil || !strings.Contains(out, want) {
				t.Errorf("logs of %s: %q, want %q (%v)", p.Name, out, want, err)
			}
		}
		if len(seen) != 5 {
			t.Errorf("indexes run: %v", seen)
		}
		flaky, err := jobs.Get(t.Context(), "flaky", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reason := ""
		for _, c := range flaky.Status.Conditions {
			if c.Type == "Failed" && c.Status == corev1.ConditionTrue {
				reason = c.Reason
			}
		}
		pods := u.pods(t, "batch.kubernetes.io/job-name=flaky")
		if reason != "BackoffLimitExceeded" || flaky.Status.Failed != 2 || len(pods) != 2 {
			t.Errorf("flaky: Failed reason %q, failed %d, %d pods", reason, flaky.Status.Failed, len(pods))
		}
		for _, p := range pods {
			if cs := p.Status.ContainerStatuses; p.Status.Phase != corev1.PodFailed || len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 3 {
				t.Errorf("pod %s: phase %s, statuses %+v", p.Name, p.Status.Phase, cs)
			}
		}
	})
	t.Run("config", func(t *testing.T) {
		pod := u.onePod(t, "config")
		logs := func() (string, error) { return u.keelson("logs", "-n", "config", pod, "--tail", "3") }
		eventuallyOut(t, "config's log", func() (string, bool) {
			out, err := logs()
			return out, err == nil && out == "env: GREETING=hello DB_USER=demo\nfile: color=blue retries=3 \nsecret file: password has 17 bytes\n"
		})
		settings := filepath.Join(u.repo, "examples", "config", "settings.yaml")
		b, err := os.ReadFile(settings)
		if err != nil {
			t.Fatal(err)
		}
		changed := strings.NewReplacer("GREETING: hello", "GREETING: hi", "color=blue", "color=green").Replace(string(b))
		commit(t, u.repo, "examples/config/settings.yaml", changed, "config: green, and hi")
		eventuallyOut(t, "the file changed, the environment not", func() (string, bool) {
			out, err := logs()
			return out, err == nil && out == "env: GREETING=hello DB_USER=demo\nfile: color=green retries=3 \nsecret file: password has 17 bytes\n"
		})
		if p := u.onePod(t, "config"); p != pod {
			t.Errorf("the config change replaced pod %s by %s; only the annotation should", pod, p)
		}
	})
	t.Run("cronjob", func(t *testing.T) {
		// The heartbeat CronJob's first run: a Job named by its minute,
		// annotated with that minute, whose pod logs the time and
		// succeeds; the CronJob records the schedule and the success.
		cron := u.client(t).BatchV1().CronJobs("jobs")
		deadline := time.Now().Add(2 * time.Minute) // a hang guard: the first run waits for the next minute
		for {
			cj, err := cron.Get(t.Context(), "heartbeat", metav1.GetOptions{})
			if err == nil && cj.Status.LastSuccessfulTime != nil && cj.Status.LastScheduleTime != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("heartbeat never succeeded: %+v (%v)", cj, err)
			}
			time.Sleep(time.Second)
		}
		jobs, err := u.client(t).BatchV1().Jobs("jobs").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var beat string
		for _, j := range jobs.Items {
			if ref := metav1.GetControllerOf(&j); ref == nil || ref.Kind != "CronJob" || ref.Name != "heartbeat" {
				continue
			}
			at, err := time.Parse(time.RFC3339, j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
			if err != nil || at.Second() != 0 || j.Name != fmt.Sprintf("heartbeat-%d", at.Unix()/60) {
				t.Errorf("job %s: scheduled at %q (%v)", j.Name, j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"], err)
			}
			beat = j.Name
		}
		if beat == "" {
			t.Fatal("no Job of the heartbeat CronJob")
		}
		pods := u.pods(t, "batch.kubernetes.io/job-name="+beat)
		if len(pods) != 1 {
			t.Fatalf("%d pods of %s", len(pods), beat)
		}
		eventuallyOut(t, "the heartbeat's log", func() (string, bool) {
			out, err := u.keelson("logs", "-n", "jobs", pods[0].Name)
			return out, err == nil && strings.Contains(out, "heartbeat at ")
		})
	})
	t.Run("jobs after a commit", func(t *testing.T) {
		// config's commit was synced: the finished Job, unchanged in Git,
		// is the same object, still Complete, and ran no pod again.
		render, err := u.client(t).BatchV1().Jobs("jobs").Get(t.Context(), "render", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pods := u.pods(t, "batch.kubernetes.io/job-name=render"); render.UID != renderUID || render.Status.Succeeded != 5 || len(pods) != 5 || render.Status.Active != 0 {
			t.Errorf("render after another commit: uid %s (was %s), succeeded %d, active %d, %d pods",
				render.UID, renderUID, render.Status.Succeeded, render.Status.Active, len(pods))
		}
	})
}

// onePod is the name of the only pod of an example's app Deployment.
func (u *upFixture) onePod(t testing.TB, namespace string) string {
	t.Helper()
	var names []string
	for _, p := range u.pods(t, "app.kubernetes.io/name=app") {
		if p.Namespace == namespace {
			names = append(names, p.Name)
		}
	}
	if len(names) != 1 {
		t.Fatalf("pods of app in namespace %s: %v, want one", namespace, names)
	}
	return names[0]
}

var podClient = &http.Client{Timeout: 5 * time.Second}

// httpGet fetches url from this machine, which reaches pod addresses
// through the node's bridge.
func httpGet(url string) (string, error) {
	resp, err := podClient.Get(url)
	if err != nil {
		return err.Error(), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}
