// Package uitest drives the web view in a real headless browser, Debian's
// chromium, through the DevTools protocol (chromedp), for tests and
// benchmarks of the view.
//
//	ctx := uitest.Browser(t)
//	err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible("#main"))
package uitest
