package uitest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
)

// Chromium returns the browser's path, or skips the test when it is not
// installed (fails it under KEELSON_REQUIRE_CONTAINERD=1, as CI runs).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	containerdtest.Unavailable(t, "browser tests", "no chromium (apt-get install chromium; make deps installs it)")
	return ""
}

// Browser starts a headless browser with a profile of its own for the
// test, and returns a context that drives its first tab. The browser is
// stopped, and its processes gone, when the test ends.
func Browser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		// As root, chromium runs only without its sandbox.
		chromedp.NoSandbox,
		// keelson's API serves HTTPS with a CA of its own.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, stop := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		stop()
		stopAlloc() // waits for the browser to exit
	})
	// Start the browser now, so a test's first step times only itself.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Navigate loads url, again when the machine's network changed under the
// browser: chromium aborts a load with ERR_NETWORK_CHANGED when an address
// changes on any interface, as tests that make network namespaces, veths
// and bridges do on the same machine.
func Navigate(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var err error
		for range 5 {
			_, err = chromedp.Navigate(url)(ctx, t)
			if err == nil {
				text, _ := chromedp.Evaluate[string]("document.body ? document.body.innerText : ''")(ctx, t)
				if !strings.Contains(text, NetworkChanged) {
					return nil
				}
				err = errors.New(NetworkChanged)
			}
			if !strings.Contains(err.Error(), NetworkChanged) {
				return err
			}
		}
		return fmt.Errorf("load %s: %w", url, err)
	})
}

// NetworkChanged is chromium's error for a load the network's change cut.
const NetworkChanged = "ERR_NETWORK_CHANGED"
