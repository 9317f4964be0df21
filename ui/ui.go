package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path the view is served under.
const Prefix = "/ui/"

// Config is what the view needs.
type Config struct {
	// API serves the resource API; the view reads everything through it, as
	// the signed-in person. Required.
	API http.Handler
	// Logger for the view's own lines. Required.
	Logger *slog.Logger
}

// View is the web view's handler.
type View struct {
	api   *http.Client
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	h     http.Handler
}

// New returns the view. It serves every path under Prefix.
func New(cfg Config) *View {
	log := cfg.Logger.With("component", "ui")
	v := &View{
		api: &http.Client{Transport: inProcess{h: cfg.API, log: log},
			// The API never redirects; the view follows nothing it is sent.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:   log,
		pages: parseTemplates(),
		mux:   http.NewServeMux(),
	}
	static, _ := fs.Sub(staticFS, "static")
	v.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheable(http.FileServerFS(static))))
	v.mux.HandleFunc("GET /ui/login", v.loginPage)
	v.mux.HandleFunc("POST /ui/login", v.login)
	v.mux.HandleFunc("POST /ui/logout", v.logout)
	v.mux.HandleFunc("GET /ui/{$}", v.signedIn(v.sourcesPage))
	v.mux.HandleFunc("GET /ui/sources/{name}", v.signedIn(v.sourcePage))
	v.mux.HandleFunc("GET /ui/pods/{namespace}/{name}", v.signedIn(v.podPage))
	v.mux.HandleFunc("GET /ui/pods/{namespace}/{name}/log", v.signedIn(v.podLog))
	v.mux.HandleFunc("GET /ui/objects/{resource}/{name}", v.signedIn(v.objectPage))
	v.mux.HandleFunc("GET /ui/objects/{resource}/{namespace}/{name}", v.signedIn(v.objectPage))
	v.mux.HandleFunc("GET /ui/nodes", v.signedIn(v.nodesPage))
	v.mux.HandleFunc("GET /ui/search", v.signedIn(v.searchPage))
	v.mux.HandleFunc("GET /ui/live", v.signedIn(v.live))
	// The view never writes, so its only forms (sign in, sign out) are all
	// a cross-site request could forge: refuse those from other origins.
	v.h = secureHeaders(http.NewCrossOriginProtection().Handler(v.mux))
	return v
}

// ServeHTTP serves the view's paths, under Prefix.
func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) { v.h.ServeHTTP(w, r) }

// contentSecurity lets pages load only the view's own files: no inline
// script, no other origin, no framing.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurity)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// request is one signed-in request: who, and a client that reads as them.
type request struct {
	*http.Request
	api  *client
	user string
}

// signedIn serves h to a request whose cookie holds a token, and sends
// others to the sign-in page.
func (v *View) signedIn(h func(http.ResponseWriter, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := cookieValue(r, cookieName)
		if token == "" {
			v.toLogin(w, r)
			return
		}
		r = r.WithContext(withRemote(r.Context(), r.RemoteAddr))
		h(w, &request{Request: r, api: &client{hc: v.api, token: token}, user: cookieValue(r, userCookieName)})
	}
}

func (v *View) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(fragmentHeader) != "" || r.URL.Path == "/ui/live" || strings.HasSuffix(r.URL.Path, "/log") {
		// A script asked: it reloads the page, which comes here.
		http.Error(w, "sign in again", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// page is what every page's template gets.
type page struct {
	Title string
	User  string
	// Nav names the menu entry of the page.
	Nav string
	// Query is the search box's text.
	Query string
	// Live is the URL of the page's stream of changes, if it has one.
	Live string
	// Err is a read the API refused or failed, said in place of the data.
	Err string
	// Data is the page's own.
	Data any
}

// fragmentHeader asks for the page's main element alone: the script swaps
// it in when the page's objects change.
const fragmentHeader = "X-Keelson-Fragment"

// render writes a page, or its main element when the script asks for it.
func (v *View) render(w http.ResponseWriter, r *request, name string, p *page) {
	v.renderCode(w, r, name, p, http.StatusOK)
}

// renderCode renders the page first, so that a template that fails
// answers 500 rather than half a page under another status.
func (v *View) renderCode(w http.ResponseWriter, r *request, name string, p *page, code int) {
	p.User = r.user
	what := "layout"
	if r.Header.Get(fragmentHeader) != "" {
		what = "main"
	}
	var b bytes.Buffer
	if err := v.pages[name].ExecuteTemplate(&b, what, p); err != nil {
		v.log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page cannot be shown: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// badRequest is an error in what the person asked (a search that is no
// label selector): 400.
type badRequest struct{ error }

// failed answers a read that failed: back to sign-in when the token is no
// longer taken, else the page with the error in place of its data, under
// the API's status (403, 404, …), 400 for a bad request, or 502.
func (v *View) failed(w http.ResponseWriter, r *request, name string, p *page, err error) {
	if errors.Is(err, errSignedOut) {
		clearCookies(w)
		v.toLogin(w, r.Request)
		return
	}
	code := http.StatusBadGateway
	var status apierrors.APIStatus
	switch {
	case errors.As(err, &status) && status.Status().Code >= 400:
		code = int(status.Status().Code)
	case errors.As(err, new(badRequest)):
		code = http.StatusBadRequest
	}
	if code >= 500 && !errors.Is(err, context.Canceled) {
		v.log.Warn("read for page", "path", r.URL.Path, "err", err)
	}
	p.Err, p.Data = err.Error(), nil
	v.renderCode(w, r, name, p, code)
}

// notFound answers a path that names no object.
func (v *View) notFound(w http.ResponseWriter, r *request, name string, p *page) {
	p.Err = "there is no such object: " + r.URL.Path
	v.renderCode(w, r, name, p, http.StatusNotFound)
}
