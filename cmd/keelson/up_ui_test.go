package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/ui/uitest"
)

// tickerYAML is a Deployment whose container logs a numbered line three
// times a second.
var tickerYAML = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: ticker}
spec:
  replicas: 1
  selector: {matchLabels: {app: ticker}}
  template:
    metadata: {labels: {app: ticker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: ticker
        image: %s
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"]
`, ociarchive.BusyboxRef)

// TestWebViewInABrowser runs keelson up on a Git repository and real
// containerd and has headless chromium use the web view as a person does:
// sign in with the kubeconfig's token, open the source, see a new commit's
// revision and a broken commit's file:line appear without reloading, open a
// pod and follow its log. With KEELSON_UI_SCREENSHOTS=DIR it saves the main
// pages there (docs/ holds the README's).
func TestWebViewInABrowser(t *testing.T) {
	u := newUpFixture(t)
	ctx := uitest.Browser(t)
	commit(t, u.repo, "deploy/ticker.yaml", tickerYAML, "Add the ticker")
	up := u.start(t, u.repo)
	u.waitPods(t, up, 1)
	base := "https://" + u.args[slices.Index(u.args, "--listen")+1]
	kc, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("KEELSON_UI_SCREENSHOTS")
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if shots == "" {
				return nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, "ui-"+name+".png"), png, 0o644)
		})
	}
	pageText := func() string {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		return text
	}
	// step runs steps; when the machine's network changes under the
	// browser (the agent adds pods' interfaces and addresses), chromium
	// aborts what it was loading with ERR_NETWORK_CHANGED, and a step that
	// begins by loading a page (again) is run again.
	step := func(what string, retry bool, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			c, cancel := context.WithTimeout(ctx, 90*time.Second)
			err := chromedp.Do(c, steps...)
			cancel()
			if err == nil {
				return
			}
			text := pageText()
			if retry && attempt < 3 && (strings.Contains(text, uitest.NetworkChanged) || strings.Contains(err.Error(), uitest.NetworkChanged)) {
				t.Logf("%s: the network changed under the browser, again", what)
				continue
			}
			t.Fatalf("%s: %v\npage:\n%s", what, err, text)
		}
	}
	href := func(sel string) string {
		t.Helper()
		h, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute("href")`, sel)))
		if err != nil || !strings.HasPrefix(h, "/ui/") {
			t.Fatalf("no link %s (%q, %v):\n%s", sel, h, err, pageText())
		}
		return h
	}
	has := func(id, text string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.getElementById(%q) || {textContent: ""}).textContent.includes(%q)`, id, text))
	}
	live := chromedp.Poll[chromedp.Void](`document.getElementById("live-status").textContent === "Live"`)
	head := func() string {
		out, err := exec.Command("git", "-C", u.repo, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))[:12]
	}

	step("sign in", true,
		uitest.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), kc.BearerToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/ui/sources/"]`)),
		live,
		shot("sources"),
	)
	source := href(`a[href^="/ui/sources/"]`)
	step("open the source", true,
		uitest.Navigate(base+source),
		chromedp.WaitVisible(chromedp.ID("applied")),
		has("applied", head()+" Add the ticker"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#tree a[href^="/ui/pods/"]').length > 0`),
		live,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool]("window.notReloaded = true")(ctx, tg)
			return err
		}),
	)
	pod := href(`#tree a[href^="/ui/pods/"]`)

	commit(t, u.repo, "deploy/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n", "Add the settings")
	step("see the new revision live", false, has("applied", head()+" Add the settings"), has("tree", "settings"))

	commit(t, u.repo, "deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata: 7\n", "Break the config")
	step("see the broken commit's error", false, has("attempted", head()+" Break the config"), has("errors", "deploy/broken.yaml:5"), shot("source"))
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.notReloaded === true")); err != nil || !ok {
		t.Errorf("the source page was loaded again (%v): it must change in place", err)
	}

	var last int
	step("open a pod and follow its log", true,
		uitest.Navigate(base+pod),
		chromedp.WaitVisible(chromedp.ID("logs")),
		has("pod-status", "Running"),
		has("logs", "tick "),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			last, err = chromedp.Evaluate[int](`Math.max(...[...document.getElementById("logs").textContent.matchAll(/tick (\d+)/g)].map(m => +m[1]))`)(ctx, tg)
			return err
		}),
	)
	step("follow the log", false, has("logs", fmt.Sprintf("tick %d\n", last+3)), shot("pod"))
	step("nodes", true, uitest.Navigate(base+href(`nav a[href="/ui/nodes"]`)), chromedp.WaitVisible(chromedp.CSS("table.nodes")), has("main", "local"), shot("nodes"))
	step("search", true,
		uitest.Navigate(base+"/ui/nodes"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "app=ticker\n"),
		chromedp.WaitVisible(chromedp.ID("results")),
		has("results", "ticker"), shot("search"))
}
