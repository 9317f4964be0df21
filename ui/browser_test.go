package ui_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keelson/keelson/ui/uitest"
)

// signInBrowser signs in through the sign-in page as a person does.
func (e *env) signInBrowser(t testing.TB, ctx context.Context, token string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("main")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
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
		chromedp.Click(chromedp.CSS(`a[href="/ui/sources/apps"]`)),
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
