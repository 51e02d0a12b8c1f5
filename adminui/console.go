package adminui

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/outhook/outhook/adminhttp"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows nothing but the console's own stylesheet,
// script and forms: no inline script or style, no frames, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Cookie names. The CSRF cookie holds a random token that every form which
// changes state must repeat (the double-submit pattern); the session cookie
// is set by the login page of TokenAuth.
const (
	csrfCookie    = "outhook_csrf"
	sessionCookie = "outhook_session"
	csrfField     = "csrf"
)

// Options configures a Console.
type Options struct {
	// Title is shown in the header and the page titles. Empty means
	// "outhook".
	Title string
	// BasePath is the path the console is mounted at, such as
	// "/admin/outhook/console", used for its links and cookies. Empty means
	// it is found from each request: the request's path minus what is left
	// of it after http.StripPrefix.
	BasePath string
	// Login, when set, gives the console a sign-in page that asks for the
	// token of this TokenAuth and keeps the browser signed in with a
	// cookie. Authorize the admin API with the same TokenAuth. Nil means
	// the application signs its users in itself; the console then shows a
	// page that says so to a request the API answers 401.
	Login *TokenAuth
	// SecureCookies marks the console's cookies Secure (sent over HTTPS
	// only) even on plain-HTTP requests: set it when a proxy in front of
	// the application terminates TLS. Requests that arrive over TLS get
	// Secure cookies anyway.
	SecureCookies bool
	// Logger receives errors the console cannot show (a template that
	// fails to render). Nil means slog.Default().
	Logger *slog.Logger
}

// Console is the admin console of an outhook client: an http.Handler of
// server-rendered pages that calls the admin API handler it is given for
// every read and change, with the browser's own request headers, so that
// the API's authorizer decides what each user may see and do. Create one
// with New and mount it with http.StripPrefix.
type Console struct {
	api    http.Handler
	title  string
	base   string
	login  *TokenAuth
	secure bool
	log    *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux
	cop    *http.CrossOriginProtection
}

var _ http.Handler = (*Console)(nil)

// New returns a console that uses api, the application's admin API handler
// (as returned by adminhttp.New), for everything it shows and does. A nil
// opts means the zero Options.
func New(api *adminhttp.Handler, opts *Options) (*Console, error) {
	if api == nil {
		return nil, errors.New("adminui: New: api is nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BasePath != "" && (!strings.HasPrefix(o.BasePath, "/") || strings.HasSuffix(o.BasePath, "/")) {
		return nil, fmt.Errorf("adminui: Options.BasePath must start with / and not end with one, got %q", o.BasePath)
	}
	c := &Console{api: api, title: o.Title, base: o.BasePath, login: o.Login, secure: o.SecureCookies, log: o.Logger,
		mux: http.NewServeMux(), cop: http.NewCrossOriginProtection()}
	if c.title == "" {
		c.title = "outhook"
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.FileServerFS(sub)
	c.routes()
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: browsers without Sec-Fetch-Site send
	// "Origin: null" under no-referrer, which the cross-origin check
	// refuses, and no other site learns the console's URLs either way.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// handlerFunc is a page handler; its error is shown as an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (c *Console) routes() {
	get := func(pattern string, h handlerFunc) { c.mux.Handle("GET "+pattern, c.page(h)) }
	post := func(pattern string, h handlerFunc) { c.mux.Handle("POST "+pattern, c.change(h)) }

	c.mux.Handle("GET /static/", http.StripPrefix("/static", http.HandlerFunc(c.serveStatic)))
	get("/{$}", c.home)
	get("/events", c.events)
	get("/subscriptions", c.subscriptions)
	get("/subscriptions/new", c.newSubscription)
	post("/subscriptions/new", c.createSubscription)
	get("/subscriptions/{id}", c.subscription)
	get("/subscriptions/{id}/edit", c.editSubscription)
	post("/subscriptions/{id}/edit", c.updateSubscription)
	post("/subscriptions/{id}/enable", c.setEnabled(true))
	post("/subscriptions/{id}/disable", c.setEnabled(false))
	post("/subscriptions/{id}/test", c.sendTest)
	post("/subscriptions/{id}/recover", c.recoverSince)
	get("/subscriptions/{id}/delete", c.confirmDelete)
	post("/subscriptions/{id}/delete", c.deleteSubscription)
	get("/deliveries", c.deliveries)
	get("/deliveries/{id}", c.delivery)
	post("/deliveries/{id}/redeliver", c.redeliver)
	get("/login", c.loginPage)
	post("/login", c.signIn)
	post("/logout", c.signOut)
	c.mux.Handle("/", c.page(func(http.ResponseWriter, *http.Request) error {
		return &apiError{Status: http.StatusNotFound, Problem: adminhttp.Problem{Detail: "There is no such page."}}
	}))
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}

// page wraps a handler of a page that changes nothing.
func (c *Console) page(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c.ensureCSRF(w, r)
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	})
}

// change wraps a handler of a form that changes state: the request must
// come from the console's own origin (http.CrossOriginProtection, which
// reads Sec-Fetch-Site and Origin) and repeat the CSRF cookie's token.
func (c *Console) change(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := c.cop.Check(r); err != nil {
			c.fail(w, r, errCrossOrigin)
			return
		}
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, &apiError{Status: http.StatusBadRequest, Problem: adminhttp.Problem{Detail: "The form could not be read: " + err.Error()}})
			return
		}
		if !c.validCSRF(r) {
			c.ensureCSRF(w, r)
			c.fail(w, r, errCSRF)
			return
		}
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	})
}

// maxFormBytes caps a submitted form.
const maxFormBytes = 1 << 20

var (
	errCrossOrigin = &apiError{Status: http.StatusForbidden, Problem: adminhttp.Problem{
		Title: "Cross-origin request refused", Detail: "The form was not sent from this console's own pages."}}
	errCSRF = &apiError{Status: http.StatusForbidden, Problem: adminhttp.Problem{
		Title: "Form expired", Detail: "The form's security token is missing or out of date. Go back, reload the page and try again."}}
)

// ensureCSRF gives the browser a CSRF token cookie when it has none.
func (c *Console) ensureCSRF(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return
	}
	tok := newToken()
	http.SetCookie(w, c.cookie(r, csrfCookie, tok))
	// The page being rendered reads the token from the request.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
}

func (c *Console) validCSRF(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) < 32 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostForm.Get(csrfField))) == 1
}

func csrfToken(r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil {
		return ck.Value
	}
	return ""
}

// cookie makes one of the console's cookies: scoped to its path, hidden
// from scripts, sent only with same-site requests, and Secure over TLS.
func (c *Console) cookie(r *http.Request, name, value string) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: c.basePath(r) + "/", HttpOnly: true,
		Secure: c.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// basePath is where the console is mounted: Options.BasePath, or the part
// of the request's path that http.StripPrefix removed.
func (c *Console) basePath(r *http.Request) string {
	if c.base != "" {
		return c.base
	}
	full := r.RequestURI
	if u, err := url.ParseRequestURI(full); err == nil {
		full = u.Path
	}
	if base, ok := strings.CutSuffix(full, r.URL.Path); ok {
		return strings.TrimSuffix(base, "/")
	}
	return ""
}

// apiError is an answer of the admin API other than a success.
type apiError struct {
	Status  int
	Problem adminhttp.Problem
}

func (e *apiError) Error() string {
	return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Problem.Title, e.Problem.Detail)
}

// call runs one admin API operation for the browser's request r: the API
// sees r's headers (its cookies and credentials), so its authorizer
// decides as it would for the browser itself. A 2xx answer is decoded into
// out when out is not nil; any other is an *apiError.
func (c *Console) call(r *http.Request, method, path string, query url.Values, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(r.Context(), method, target, rd)
	} else {
		req, err = http.NewRequestWithContext(r.Context(), method, target, http.NoBody)
	}
	if err != nil {
		return err
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Content-Length")
	req.Header.Del("Content-Type")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	req.RequestURI = target

	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		e := &apiError{Status: rec.status}
		_ = json.Unmarshal(rec.body.Bytes(), &e.Problem)
		return e
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	dec := json.NewDecoder(&rec.body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("admin API %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// recorder is the ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// fail shows err as an error page. An API answer of 401 sends the browser
// to the sign-in page when the console has one.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		c.log.ErrorContext(r.Context(), "adminui: internal error", "error", err)
		ae = &apiError{Status: http.StatusInternalServerError, Problem: adminhttp.Problem{Detail: "An internal error occurred; it has been logged."}}
	}
	if ae.Status == http.StatusUnauthorized && c.login != nil {
		// After signing in, a GET goes back where it was; a form that was
		// refused goes back to its page, to be sent again.
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			next = formPage(r.URL.Path)
		}
		http.Redirect(w, r, c.basePath(r)+"/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	title := ae.Problem.Title
	if title == "" {
		title = http.StatusText(ae.Status)
	}
	data := errorPage{Status: ae.Status, Title: title, Detail: ae.Problem.Detail, Fields: ae.Problem.Errors,
		SignedOut: ae.Status == http.StatusUnauthorized}
	c.render(w, r, ae.Status, "error", title, "", data)
}

type errorPage struct {
	Status    int
	Title     string
	Detail    string
	Fields    []adminhttp.FieldProblem
	SignedOut bool
}

// formPage is the page that shows the form posted to path: the form itself
// for the create and edit forms, else the page of the subscription or
// delivery concerned.
func formPage(path string) string {
	switch {
	case path == "/subscriptions/new" || strings.HasSuffix(path, "/edit"):
		return path
	case strings.HasPrefix(path, "/subscriptions/") || strings.HasPrefix(path, "/deliveries/"):
		parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
		if len(parts) >= 2 {
			return "/" + parts[0] + "/" + parts[1]
		}
	}
	return "/subscriptions"
}
