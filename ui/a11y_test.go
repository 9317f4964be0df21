package ui_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/keelson/keelson/ui/uitest"
)

// contrastJS returns the text of elements whose text contrasts with its
// background less than WCAG AA asks (4.5:1; 3:1 for large or bold-large
// text), with the ratio.
const contrastJS = `(() => {
  const lum = (c) => {
    const m = c.match(/[\d.]+/g).map(Number);
    const [r, g, b] = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      const a = c.match(/[\d.]+/g);
      if (a && (a.length < 4 || +a[3] > 0.5)) return c;
    }
    return "rgb(255, 255, 255)";
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join("");
    if (!text || el.offsetParent === null && getComputedStyle(el).position !== "fixed") continue;
    const s = getComputedStyle(el);
    const l1 = lum(s.color), l2 = lum(bg(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && +s.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(text.slice(0, 40) + " (" + ratio.toFixed(2) + ")");
  }
  return bad;
})()`

// TestPagesAccessible checks each page in chromium: every control, link,
// meter and image has an accessible name (a label, its text, aria-label),
// and text contrasts with its background as WCAG AA asks.
func TestPagesAccessible(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 3)
	e.create(t, etcdNode("local"))
	ctx := uitest.Browser(t)
	if err := chromedp.Do(ctx, uitest.Navigate(e.url+"/ui/login")); err != nil {
		t.Fatal(err)
	}
	check(t, ctx, "login")
	e.signInBrowser(t, ctx, adminToken)
	// From the keyboard: the first Tab reaches the skip link, which takes
	// the focus past the header to the page's content.
	active, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (string, error) {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			return "", err
		}
		first, err := chromedp.Evaluate[string]("document.activeElement.className")(ctx, tg)
		if err != nil || first != "skip" {
			return "first Tab: " + first, err
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
			return "", err
		}
		return chromedp.Evaluate[string]("document.activeElement.id")(ctx, tg)
	})
	if err != nil || active != "main" {
		t.Errorf("skip link: focus on %q (%v), want main", active, err)
	}
	for _, path := range []string{"/ui/", "/ui/sources/apps", "/ui/pods/shop/web-7d9c5b8f6-a", "/ui/objects/deployments.apps/shop/web", "/ui/nodes", "/ui/search?q=web"} {
		if err := chromedp.Do(ctx, uitest.Navigate(e.url+path), chromedp.WaitVisible(chromedp.ID("main"))); err != nil {
			t.Fatal(err)
		}
		check(t, ctx, path)
	}
}

var named = map[string]bool{"textbox": true, "searchbox": true, "combobox": true, "button": true, "link": true,
	"meter": true, "image": true, "img": true, "checkbox": true}

func check(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	tree, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (accessibility.GetFullAXTreeResult, error) {
		return cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	})
	if err != nil {
		t.Fatalf("%s: accessibility tree: %v", page, err)
	}
	seen := 0
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := strings.Trim(string(n.Role.Value), `"`)
		if !named[role] {
			continue
		}
		seen++
		if n.Name == nil || strings.Trim(string(n.Name.Value), `" `) == "" {
			t.Errorf("%s: a %s has no accessible name", page, role)
		}
	}
	if seen == 0 {
		t.Errorf("%s: no control, link or image in the accessibility tree", page)
	}
	bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](contrastJS))
	if err != nil {
		t.Fatalf("%s: contrast: %v", page, err)
	}
	for _, b := range bad {
		t.Errorf("%s: text below WCAG AA contrast: %s", page, b)
	}
}
