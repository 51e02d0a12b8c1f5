package adminui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
)

// The admin API's answers, as the console reads them.
type (
	eventList struct {
		Categories []struct {
			Name   string          `json:"name"`
			Events []outhook.Event `json:"events"`
		} `json:"categories"`
	}
	delivererList struct {
		Items []struct {
			ID           string          `json:"id"`
			ConfigSchema json.RawMessage `json:"configSchema"`
		} `json:"items"`
	}
	subscriptionList struct {
		Items      []outhook.Subscription `json:"items"`
		NextCursor string                 `json:"nextCursor"`
	}
	deliveryList struct {
		Items []struct {
			outhook.Delivery
			AttemptCount int `json:"attemptCount"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}
	testResult struct {
		Succeeded bool            `json:"succeeded"`
		Attempt   outhook.Attempt `json:"attempt"`
	}
	recoverResult struct {
		Redelivered int    `json:"redelivered"`
		NextCursor  string `json:"nextCursor"`
	}
)

// pageData is what every template receives.
type pageData struct {
	AppTitle string
	Title    string
	Nav      string
	Base     string
	CSRF     string
	SignOut  bool
	Flash    string
	Data     any
}

// flashes are the messages a redirect may ask a page to show, by code: the
// console never shows text taken from the query string.
var flashes = map[string]string{
	"created":     "Subscription created.",
	"updated":     "Subscription saved.",
	"deleted":     "Subscription deleted.",
	"enabled":     "Subscription enabled.",
	"disabled":    "Subscription disabled.",
	"redelivered": "Redelivery queued: a new attempt will be made shortly.",
	"signedout":   "You are signed out.",
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	t, ok := c.pages[name]
	if !ok {
		c.log.ErrorContext(r.Context(), "adminui: no such template", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pd := pageData{AppTitle: c.title, Title: title, Nav: nav, Base: c.basePath(r), CSRF: csrfToken(r),
		SignOut: c.login != nil && c.login.Valid(r), Flash: flashes[r.URL.Query().Get("done")], Data: data}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		c.log.ErrorContext(r.Context(), "adminui: rendering a page", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirect answers a form with 303 See Other to a console page.
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, c.basePath(r)+path, http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, c.basePath(r)+"/subscriptions", http.StatusFound)
	return nil
}

// Events.

type eventView struct {
	outhook.Event
	Fields []fieldRow
	Err    string
}

type categoryView struct {
	Name   string
	Events []eventView
}

func (c *Console) events(w http.ResponseWriter, r *http.Request) error {
	var list eventList
	if err := c.call(r, "GET", "/events", nil, nil, &list); err != nil {
		return err
	}
	cats := make([]categoryView, 0, len(list.Categories))
	for _, cat := range list.Categories {
		cv := categoryView{Name: cat.Name}
		for _, ev := range cat.Events {
			v := eventView{Event: ev}
			rows, err := fieldRows(ev.Schema)
			if err != nil {
				v.Err = err.Error()
			}
			v.Fields = rows
			cv.Events = append(cv.Events, v)
		}
		cats = append(cats, cv)
	}
	c.render(w, r, http.StatusOK, "events", "Events", "events", cats)
	return nil
}

// Subscriptions.

type subscriptionRow struct {
	outhook.Subscription
	Counts outhook.StatusCounts
}

type subscriptionsPage struct {
	Rows       []subscriptionRow
	NextCursor string
	Cursor     string
}

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request) error {
	q := url.Values{"limit": {"100"}}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var list subscriptionList
	if err := c.call(r, "GET", "/subscriptions", q, nil, &list); err != nil {
		return err
	}
	counts, err := c.counts(r, "")
	if err != nil {
		return err
	}
	page := subscriptionsPage{NextCursor: list.NextCursor, Cursor: cursor}
	for _, s := range list.Items {
		page.Rows = append(page.Rows, subscriptionRow{Subscription: s, Counts: counts[s.ID]})
	}
	c.render(w, r, http.StatusOK, "subscriptions", "Subscriptions", "subscriptions", page)
	return nil
}

// counts reads the last 24 hours' delivery counts by subscription.
func (c *Console) counts(r *http.Request, subID string) (map[string]outhook.StatusCounts, error) {
	q := url.Values{"hours": {"24"}}
	if subID != "" {
		q.Set("subscriptionId", subID)
	}
	var st outhook.DeliveryStats
	if err := c.call(r, "GET", "/stats", q, nil, &st); err != nil {
		return nil, err
	}
	out := make(map[string]outhook.StatusCounts, len(st.BySubscription))
	for _, row := range st.BySubscription {
		out[row.SubscriptionID] = row.StatusCounts
	}
	return out, nil
}

type subscriptionPage struct {
	Sub        outhook.Subscription
	Counts     outhook.StatusCounts
	Config     string
	Recent     []deliveryRow
	Test       *testResult
	TestErr    *apiError
	Recovered  *recoverResult
	RecoverErr *apiError
	Since      string
}

func (c *Console) subscription(w http.ResponseWriter, r *http.Request) error {
	return c.showSubscription(w, r, http.StatusOK, nil)
}

// showSubscription renders a subscription's page, with the result of a
// test or a recovery when the form asked for one.
func (c *Console) showSubscription(w http.ResponseWriter, r *http.Request, status int, fill func(*subscriptionPage)) error {
	id := r.PathValue("id")
	var p subscriptionPage
	if err := c.call(r, "GET", "/subscriptions/"+url.PathEscape(id), nil, nil, &p.Sub); err != nil {
		return err
	}
	counts, err := c.counts(r, id)
	if err != nil {
		return err
	}
	p.Counts = counts[id]
	p.Config = prettyJSON(p.Sub.Config)
	var recent deliveryList
	if err := c.call(r, "GET", "/deliveries", url.Values{"subscriptionId": {id}, "limit": {"10"}}, nil, &recent); err != nil {
		return err
	}
	for _, d := range recent.Items {
		p.Recent = append(p.Recent, deliveryRow{Delivery: d.Delivery, AttemptCount: d.AttemptCount, SubName: p.Sub.Name})
	}
	p.Since = time.Now().UTC().Add(-24 * time.Hour).Format(datetimeLocal)
	if fill != nil {
		fill(&p)
	}
	title := p.Sub.Name
	if title == "" {
		title = p.Sub.ID
	}
	c.render(w, r, status, "subscription", title, "subscriptions", p)
	return nil
}

// datetimeLocal is the format of <input type="datetime-local">; the
// console reads and shows those times in UTC.
const datetimeLocal = "2006-01-02T15:04"

func (c *Console) setEnabled(enabled bool) handlerFunc {
	op, done := "disable", "disabled"
	if enabled {
		op, done = "enable", "enabled"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := c.call(r, "POST", "/subscriptions/"+url.PathEscape(id)+"/"+op, nil, nil, nil); err != nil {
			return err
		}
		back := "/subscriptions/" + url.PathEscape(id)
		if r.PostForm.Get("from") == "list" {
			back = "/subscriptions"
		}
		c.redirect(w, r, back+"?done="+done)
		return nil
	}
}

func (c *Console) sendTest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var res testResult
	err := c.call(r, "POST", "/subscriptions/"+url.PathEscape(id)+"/test", nil, nil, &res)
	ae, isAPI := err.(*apiError)
	if err != nil && (!isAPI || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound) {
		return err
	}
	return c.showSubscription(w, r, http.StatusOK, func(p *subscriptionPage) {
		if err != nil {
			p.TestErr = ae
			return
		}
		p.Test = &res
	})
}

func (c *Console) recoverSince(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	// The range is checked here first; a refusal is shown like the API's.
	body := map[string]string{}
	var bad []adminhttp.FieldProblem
	for _, name := range []string{"since", "until"} {
		v := strings.TrimSpace(r.PostForm.Get(name))
		if v == "" {
			continue
		}
		t, err := time.Parse(datetimeLocal, v)
		if err != nil {
			bad = append(bad, adminhttp.FieldProblem{Field: name, Detail: "must be a date and time such as 2026-11-29T08:00"})
			continue
		}
		body[name] = t.UTC().Format(time.RFC3339)
	}
	var res recoverResult
	var err error
	if len(bad) > 0 {
		err = &apiError{Status: http.StatusBadRequest, Problem: adminhttp.Problem{Title: "Bad request",
			Detail: "The time range is not valid.", Errors: bad}}
	} else {
		err = c.call(r, "POST", "/subscriptions/"+url.PathEscape(id)+"/recover", nil, body, &res)
	}
	ae, isAPI := err.(*apiError)
	if err != nil && (!isAPI || ae.Status != http.StatusBadRequest && ae.Status != http.StatusConflict) {
		return err
	}
	return c.showSubscription(w, r, http.StatusOK, func(p *subscriptionPage) {
		if err != nil {
			p.RecoverErr = ae
			return
		}
		p.Recovered = &res
	})
}

func (c *Console) confirmDelete(w http.ResponseWriter, r *http.Request) error {
	var s outhook.Subscription
	if err := c.call(r, "GET", "/subscriptions/"+url.PathEscape(r.PathValue("id")), nil, nil, &s); err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "delete", "Delete subscription", "subscriptions", s)
	return nil
}

func (c *Console) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := c.call(r, "DELETE", "/subscriptions/"+url.PathEscape(r.PathValue("id")), nil, nil, nil); err != nil {
		return err
	}
	c.redirect(w, r, "/subscriptions?done=deleted")
	return nil
}

// Deliveries.

type deliveriesPage struct {
	Filter        deliveryFilter
	Items         []deliveryRow
	NextCursor    string
	Subscriptions []outhook.Subscription
	Events        []string
	Err           *apiError
	// RefreshHref and NextHref are the page's own address and that of the
	// next page, built whole in Go: html/template would escape a query
	// string put in an href after a "?".
	RefreshHref, NextHref string
}

type deliveryFilter struct {
	SubscriptionID, EventID, Status, Since, Until, Cursor string
}

type deliveryRow struct {
	outhook.Delivery
	AttemptCount int
	SubName      string
}

func (c *Console) deliveries(w http.ResponseWriter, r *http.Request) error {
	in := r.URL.Query()
	f := deliveryFilter{SubscriptionID: in.Get("subscriptionId"), EventID: in.Get("eventId"), Status: in.Get("status"),
		Since: in.Get("since"), Until: in.Get("until"), Cursor: in.Get("cursor")}
	q := url.Values{"limit": {"50"}}
	for k, v := range map[string]string{"subscriptionId": f.SubscriptionID, "eventId": f.EventID, "status": f.Status, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	page := deliveriesPage{Filter: f,
		RefreshHref: (&url.URL{Path: c.basePath(r) + "/deliveries", RawQuery: r.URL.Query().Encode()}).String()}
	for name, v := range map[string]string{"since": f.Since, "until": f.Until} {
		if v == "" {
			continue
		}
		t, err := time.Parse(datetimeLocal, v)
		if err != nil {
			page.Err = &apiError{Status: http.StatusBadRequest, Problem: adminhttp.Problem{
				Detail: name + " must be a date and time such as 2026-11-29T08:00 (UTC)"}}
			continue
		}
		q.Set(name, t.UTC().Format(time.RFC3339))
	}
	var subs subscriptionList
	if err := c.call(r, "GET", "/subscriptions", url.Values{"limit": {"500"}}, nil, &subs); err != nil {
		return err
	}
	page.Subscriptions = subs.Items
	names := map[string]string{}
	for _, s := range subs.Items {
		names[s.ID] = s.Name
	}
	var evs eventList
	if err := c.call(r, "GET", "/events", nil, nil, &evs); err != nil {
		return err
	}
	for _, cat := range evs.Categories {
		for _, ev := range cat.Events {
			page.Events = append(page.Events, ev.ID)
		}
	}
	slices.Sort(page.Events)
	status := http.StatusOK
	if page.Err == nil {
		var list deliveryList
		err := c.call(r, "GET", "/deliveries", q, nil, &list)
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
			page.Err, status = ae, http.StatusBadRequest
		} else if err != nil {
			return err
		}
		for _, d := range list.Items {
			page.Items = append(page.Items, deliveryRow{Delivery: d.Delivery, AttemptCount: d.AttemptCount, SubName: names[d.SubscriptionID]})
		}
		if list.NextCursor != "" {
			next := url.Values{}
			for k, v := range in {
				next[k] = v
			}
			next.Set("cursor", list.NextCursor)
			page.NextHref = (&url.URL{Path: c.basePath(r) + "/deliveries", RawQuery: next.Encode()}).String()
		}
	} else {
		status = http.StatusBadRequest
	}
	c.render(w, r, status, "deliveries", "Deliveries", "deliveries", page)
	return nil
}

type deliveryPage struct {
	D       outhook.Delivery
	SubName string
	Payload string
}

func (c *Console) delivery(w http.ResponseWriter, r *http.Request) error {
	var p deliveryPage
	if err := c.call(r, "GET", "/deliveries/"+url.PathEscape(r.PathValue("id")), nil, nil, &p.D); err != nil {
		return err
	}
	var s outhook.Subscription
	if err := c.call(r, "GET", "/subscriptions/"+url.PathEscape(p.D.SubscriptionID), nil, nil, &s); err == nil {
		p.SubName = s.Name
	}
	p.Payload = prettyJSON(p.D.Payload)
	c.render(w, r, http.StatusOK, "delivery", "Delivery "+p.D.ID, "deliveries", p)
	return nil
}

func (c *Console) redeliver(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := c.call(r, "POST", "/deliveries/"+url.PathEscape(id)+"/redeliver", nil, nil, nil); err != nil {
		return err
	}
	c.redirect(w, r, "/deliveries/"+url.PathEscape(id)+"?done=redelivered")
	return nil
}

// Sign-in.

type loginPage struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) error {
	if c.login == nil {
		return &apiError{Status: http.StatusNotFound, Problem: adminhttp.Problem{Detail: "This console has no sign-in page: sign in to the application."}}
	}
	c.render(w, r, http.StatusOK, "login", "Sign in", "", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
	return nil
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) error {
	if c.login == nil {
		return &apiError{Status: http.StatusNotFound, Problem: adminhttp.Problem{Detail: "This console has no sign-in page."}}
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.login.check(strings.TrimSpace(r.PostForm.Get("token"))) {
		c.render(w, r, http.StatusUnauthorized, "login", "Sign in", "", loginPage{Next: next, Error: "That token is not valid."})
		return nil
	}
	http.SetCookie(w, c.cookie(r, sessionCookie, c.login.session))
	if next == "" {
		next = "/subscriptions"
	}
	c.redirect(w, r, next)
	return nil
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) error {
	ck := c.cookie(r, sessionCookie, "")
	ck.MaxAge = -1
	http.SetCookie(w, ck)
	if c.login != nil {
		c.redirect(w, r, "/login?done=signedout")
		return nil
	}
	c.redirect(w, r, "/subscriptions")
	return nil
}

// safeNext keeps a post-sign-in destination only when it is a path of
// the console, never another site: a path that starts with one slash,
// with no backslash and no control character (browsers drop tabs and
// newlines, turning "/\t/evil.example" into "//evil.example").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return ""
	}
	return next
}

// Helpers for pages and templates.

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t).Round(time.Second)
		switch {
		case d < 0:
			return "in " + (-d).String()
		case d < time.Minute:
			return strconv.Itoa(int(d.Seconds())) + "s ago"
		case d < time.Hour:
			return strconv.Itoa(int(d.Minutes())) + "m ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d.Hours())) + "h ago"
		}
		return strconv.Itoa(int(d.Hours()/24)) + "d ago"
	},
	"dur": func(d time.Duration) string {
		if d < time.Millisecond {
			return d.String()
		}
		return d.Round(time.Millisecond).String()
	},
	"join": strings.Join,
	"headers": func(h map[string][]string) []string {
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([]string, 0, len(keys))
		for _, k := range keys {
			for _, v := range h[k] {
				out = append(out, k+": "+v)
			}
		}
		return out
	},
	"problemLine": func(f adminhttp.FieldProblem) string {
		if f.Line > 0 {
			return fmt.Sprintf("%s (line %d, column %d): %s", f.Field, f.Line, f.Column, f.Detail)
		}
		return f.Field + ": " + f.Detail
	},
	"esc": url.PathEscape,
}
