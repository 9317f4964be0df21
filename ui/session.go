package ui

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"
)

// The token is kept in a cookie the page's scripts cannot read (HttpOnly),
// sent only to the view (Path), never with a request another site starts
// (SameSite=Strict), and only over HTTPS when the view is served so.
const (
	cookieName     = "keelson_token"
	userCookieName = "keelson_user"
	cookieLifetime = 12 * time.Hour
)

type loginData struct {
	Next  string
	Error string
}

func (v *View) loginPage(w http.ResponseWriter, r *http.Request) {
	v.render(w, &request{Request: r}, "login.html", &page{Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login takes a token, checks it with the API (whoever it names, the API
// will decide what they read), and keeps it in the cookie.
func (v *View) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	fail := func(code int, msg string) {
		v.renderCode(w, &request{Request: r}, "login.html", &page{Title: "Sign in", Data: loginData{Next: next, Error: msg}}, code)
	}
	if token == "" {
		fail(http.StatusBadRequest, "Enter a token: the one in your kubeconfig (keelson kubeconfig prints it).")
		return
	}
	user, err := (&client{hc: v.api, token: token}).whoAmI(withRemote(r.Context(), r.RemoteAddr))
	switch {
	case errors.Is(err, errSignedOut):
		fail(http.StatusUnauthorized, "The API does not take this token.")
		return
	case err != nil:
		v.log.Warn("sign in", "err", err)
		fail(http.StatusBadGateway, "The API cannot check the token now: "+err.Error())
		return
	}
	secure := r.TLS != nil
	expires := time.Now().Add(cookieLifetime)
	for name, value := range map[string]string{cookieName: token, userCookieName: user} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: base64.RawURLEncoding.EncodeToString([]byte(value)), Path: Prefix, Expires: expires,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (v *View) logout(w http.ResponseWriter, r *http.Request) {
	clearCookies(w)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func clearCookies(w http.ResponseWriter) {
	for _, name := range []string{cookieName, userCookieName} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: Prefix, MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
}

// safeNext keeps a redirect after sign-in inside the view.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// cookieValue reads a cookie the view set: base64, since a token or a user
// name may hold bytes a cookie cannot.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return ""
	}
	return string(b)
}
