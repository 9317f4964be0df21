package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keelson/keelson/ui/uitest"
)

// signInBrowser signs in through the sign-in page as a person does, again
// if the machine's network changed under the browser meanwhile.
func (e *env) signInBrowser(t testing.TB, ctx context.Context, token string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		err := chromedp.Do(c,
			uitest.Navigate(e.url+"/ui/"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Submit(chromedp.ID("token")),
			// The sign-out form: in every page but the sign-in page.
			chromedp.WaitVisible(chromedp.CSS("form.signout")),
		)
		cancel()
		if err == nil {
			return
		}
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
		if attempt == 3 || !strings.Contains(text, uitest.NetworkChanged) {
			t.Fatalf("sign in: %v\n%s", err, text)
		}
	}
}

// TestBrowserFollowsTheSource has a real browser sign in, open a source, and
// see a new revision and a failed attempt's file:line appear with no reload.
func TestBrowserFollowsTheSource(t *testing.T) {
	e := newEnv(t)
	s := e.shop(t, 2)
	ctx := uitest.Browser(t)
	e.signInBrowser(t, ctx, adminToken)
	within, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(within,
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/sources/apps"]`)),
		uitest.Navigate(e.url+"/ui/sources/apps"),
		chromedp.WaitVisible(chromedp.ID("applied")),
		// A mark the page keeps until it is loaded again.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool]("window.notReloaded = true")(ctx, t)
			return err
		}),
		chromedp.Poll[chromedp.Void](`document.getElementById("live-status").textContent === "Live"`),
	); err != nil {
		t.Fatalf("open the source: %v", err)
	}

	s.Status.LastAppliedRevision = "3333333333333333333333333333333333333333"
	s.Status.LastApplied.Revision = s.Status.LastAppliedRevision
	s.Status.LastApplied.Message = "Four replicas"
	s.Status.Errors = []string{"deploy/db.yaml:3:1: kind: Databse is not a kind keelson knows"}
	if err := e.st.UpdateStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(within,
		chromedp.Poll[chromedp.Void](`document.getElementById("applied").textContent.includes("333333333333 Four replicas")`),
		chromedp.Poll[chromedp.Void](`document.getElementById("errors").textContent.includes("deploy/db.yaml:3: kind: Databse")`),
	); err != nil {
		t.Fatalf("the new revision did not appear: %v", err)
	}
	if ok, err := chromedp.Run(within, chromedp.Evaluate[bool]("window.notReloaded === true")); err != nil || !ok {
		t.Errorf("the page was loaded again (%v): it must change in place", err)
	}
}

// BenchmarkFirstPaint loads each main page in chromium with 1,000 pods in
// the store (the source's tree shows each pod twice: under its ReplicaSet
// and behind its Service) and reports when the browser first painted it,
// from the navigation's start (the Paint Timing API): the anchor is
// 300 ms on localhost.
func BenchmarkFirstPaint(b *testing.B) {
	e := newEnv(b)
	e.shop(b, 1000)
	e.create(b, etcdNode("local"))
	ctx := uitest.Browser(b)
	e.signInBrowser(b, ctx, adminToken)
	for _, pg := range []struct{ name, path string }{
		{"sources", "/ui/"}, {"source-1000-pods", "/ui/sources/apps"}, {"pod", "/ui/pods/shop/web-7d9c5b8f6-a"},
		{"nodes", "/ui/nodes"}, {"search-1000-pods", "/ui/search?q=web"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			var paint, served float64
			for b.Loop() {
				if err := chromedp.Do(ctx, uitest.Navigate(e.url+pg.path)); err != nil {
					b.Fatal(err)
				}
				t, err := chromedp.Run(ctx, chromedp.Poll[[]float64](`(() => {
					const p = performance.getEntriesByName("first-contentful-paint")[0];
					const n = performance.getEntriesByType("navigation")[0];
					return p && n && n.responseEnd > 0 ? [p.startTime, n.responseEnd] : null;
				})()`, chromedp.WithPollingTimeout(30*time.Second)))
				if err != nil {
					b.Fatal(err)
				}
				paint += t[0]
				served += t[1]
			}
			b.ReportMetric(paint/float64(b.N), "ms-first-paint")
			b.ReportMetric(served/float64(b.N), "ms-served")
		})
	}
}

// BenchmarkLiveUpdate is the time from a Sync's new revision landing in etcd
// to a source page open in chromium showing it: watch, server-sent event,
// the page's main element read again and swapped in. The anchor is
// within a second.
func BenchmarkLiveUpdate(b *testing.B) {
	for _, pods := range []int{10, 1000} {
		b.Run(fmt.Sprintf("pods-%d", pods), func(b *testing.B) {
			e := newEnv(b)
			s := e.shop(b, pods)
			ctx := uitest.Browser(b)
			e.signInBrowser(b, ctx, adminToken)
			if err := chromedp.Do(ctx, uitest.Navigate(e.url+"/ui/sources/apps"),
				chromedp.Poll[chromedp.Void](`document.getElementById("live-status").textContent === "Live"`)); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				rev := fmt.Sprintf("%012d%028d", i, 0) // the page shows the first 12 digits
				s.Status.LastAppliedRevision = rev
				if err := e.st.UpdateStatus(b.Context(), s); err != nil {
					b.Fatal(err)
				}
				if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("applied").textContent.includes(%q)`, rev[:12]),
					chromedp.WithPollingTimeout(30*time.Second))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
