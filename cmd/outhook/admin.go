package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Environment variables of the admin commands.
const (
	envAdminURL = "OUTHOOK_ADMIN_URL"
	envToken    = "OUTHOOK_TOKEN"
)

const (
	outputTable = "table"
	outputJSON  = "json"
	// maxAnswerBytes caps an answer of the admin API.
	maxAnswerBytes = 64 << 20
	// maxCell caps the text of an error shown in a table cell, in
	// characters.
	maxCell = 60
	// problemType* are the problem types of package adminhttp.
	problemTypeNotFound = "urn:outhook:problem:not-found"
)

// maxPages bounds the requests of one list or recover: an API whose
// cursors go on past it does not end. A variable for the tests.
var maxPages = 10_000

// adminOptions are the flags of the admin group.
type adminOptions struct {
	env     func(string) string
	url     string
	token   string
	output  string
	timeout time.Duration
}

func newAdminCmd(env func(string) string) *cobra.Command {
	o := &adminOptions{env: env}
	cmd := groupCmd("admin", "Drive a running application's outhook admin API",
		`admin talks to the admin API of a running application (package adminhttp,
mounted by the application behind its own authentication).

--url (or OUTHOOK_ADMIN_URL) is where the API is mounted, such as
http://127.0.0.1:8080/admin/outhook/api. --token (or OUTHOOK_TOKEN) is sent as
"Authorization: Bearer <token>". -o json prints the API's JSON answer,
pretty-printed; lists are printed as one {"items": [...]} holding every page
fetched.

An error answer is printed as "outhook: <status> <title>: <detail>", with a
line per field at fault, and exits 1, as does an API that cannot be reached.`,
		`  export OUTHOOK_ADMIN_URL=http://127.0.0.1:8080/admin/outhook/api OUTHOOK_TOKEN=...
  outhook admin events
  outhook admin subscriptions list
  outhook admin deliveries list --status failed --since 2h
  outhook admin redeliver dlv_2x9...
  outhook admin recover sub_7k1... --since 2026-01-02T00:00:00Z`,
		newAdminEventsCmd(o),
		newAdminSubscriptionsCmd(o),
		newAdminDeliveriesCmd(o),
		newAdminRedeliverCmd(o),
		newAdminRecoverCmd(o),
	)
	f := cmd.PersistentFlags()
	f.StringVar(&o.url, "url", "", "base URL of the admin API (default $"+envAdminURL+")")
	f.StringVar(&o.token, "token", "", "bearer token for the admin API (default $"+envToken+")")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of each request to the API")
	return cmd
}

// fetch makes one API call for cmd and, with -o json, prints the answer as
// it came: done then reports that nothing is left to print. With table
// output the caller decodes raw and prints its table.
func (o *adminOptions) fetch(cmd *cobra.Command, method string, route []string, want int) (raw []byte, done bool, err error) {
	c, err := o.connect()
	if err != nil {
		return nil, false, err
	}
	defer c.close()
	raw, err = c.do(cmd.Context(), method, route, nil, nil, want)
	if err != nil {
		return nil, false, err
	}
	if o.output == outputJSON {
		return raw, true, writeJSON(cmd.OutOrStdout(), raw)
	}
	return raw, false, nil
}

// connect checks the admin flags and returns a client of the API. Close it
// when done.
func (o *adminOptions) connect() (*apiClient, error) {
	if o.output != outputTable && o.output != outputJSON {
		return nil, usageErrorf("--output %q: want table or json", o.output)
	}
	if o.timeout <= 0 {
		return nil, usageErrorf("--timeout %s: want a positive duration", o.timeout)
	}
	raw := o.url
	if raw == "" {
		raw = o.env(envAdminURL)
	}
	if raw == "" {
		return nil, usageErrorf("no admin API URL: pass --url or set %s", envAdminURL)
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usageErrorf("--url %q: want an http or https URL, such as http://127.0.0.1:8080/admin/outhook/api", redactURL(raw))
	}
	base.RawQuery, base.Fragment = "", ""
	token := o.token
	if token == "" {
		token = o.env(envToken)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{
		Transport: tr,
		Timeout:   o.timeout,
		// The token is for the API: a redirect is reported, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &apiClient{base: base, token: token, tr: tr, http: hc, timeout: o.timeout}, nil
}

// redactURL is raw without its userinfo, which may hold credentials, for
// messages. raw need not parse.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	} else {
		scheme += "://"
	}
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	authority, _, _ = strings.Cut(authority, "#")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return scheme + "xxxxx" + rest[at:]
	}
	return raw
}

// apiClient calls the admin API.
type apiClient struct {
	base    *url.URL
	token   string
	tr      *http.Transport
	http    *http.Client
	timeout time.Duration
}

// close releases the client's idle connections.
func (c *apiClient) close() { c.tr.CloseIdleConnections() }

// do sends a request to the route made of the path segments (escaped here)
// and returns the answer's body when its status is want. body, when not
// nil, is sent as JSON.
func (c *apiClient) do(ctx context.Context, method string, segments []string, query url.Values, body any, want int) ([]byte, error) {
	u, err := c.route(segments)
	if err != nil {
		return nil, err
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "outhook-cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if loc, err := resp.Location(); err == nil && resp.StatusCode/100 == 3 {
		return nil, fmt.Errorf("the API answered a redirect to %s; point --url at the API itself", redactURL(loc.String()))
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the answer of %s %s: %w", method, redactURL(u.String()), err)
	case len(answer) > maxAnswerBytes:
		return nil, fmt.Errorf("the answer of %s %s is larger than %d bytes", method, redactURL(u.String()), maxAnswerBytes)
	case resp.StatusCode != want:
		return nil, c.statusError(resp, answer)
	}
	return answer, nil
}

// route returns the URL of the path segments under the base URL. Each is
// escaped and appended as is: url.JoinPath would clean the path, and an ID
// "" or ".." would name another route.
func (c *apiClient) route(segments []string) (*url.URL, error) {
	p := strings.TrimSuffix(c.base.EscapedPath(), "/")
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	u := *c.base
	var err error
	if u.Path, err = url.PathUnescape(p); err != nil {
		return nil, err
	}
	u.RawPath = p
	return &u, nil
}

// transportError describes a request that got no answer.
func (c *apiClient) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted before the admin API answered: %w", ctx.Err())
	}
	where := redactURL(c.base.String())
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the admin API at %s: connection refused (is the application running, and --url or %s right?)", where, envAdminURL)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return fmt.Errorf("the admin API at %s did not answer within %s (--timeout)", where, c.timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err // its text repeats the URL
	}
	return fmt.Errorf("cannot reach the admin API at %s: %w", where, err)
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	// Problem is the answer's problem detail; its Title is the status
	// text when the answer was not one.
	Problem problem
	Hint    string
}

// problem is an RFC 9457 problem detail as package adminhttp writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// Error is the answer's status, title and detail on one line, then a line
// per field at fault: the API's text is escaped by printable, so that none
// of it adds a line or reaches the terminal as a control.
func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, printable(e.Problem.Title, false))
	if e.Problem.Detail != "" {
		b.WriteString(": " + printable(e.Problem.Detail, false))
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	for _, f := range e.Problem.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", printable(f.Field, false), printable(f.Detail, false))
	}
	return b.String()
}

// statusError describes an answer with an unexpected status.
func (c *apiClient) statusError(resp *http.Response, body []byte) error {
	e := &apiError{Status: resp.StatusCode}
	if err := json.Unmarshal(body, &e.Problem); err != nil || e.Problem.Title == "" {
		e.Problem = problem{Title: http.StatusText(resp.StatusCode), Detail: firstLine(body)}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && c.token == "":
		e.Hint = "pass --token or set " + envToken
	case resp.StatusCode == http.StatusUnauthorized:
		e.Hint = "the token was refused: check --token or " + envToken
	case resp.StatusCode == http.StatusNotFound && e.Problem.Type != problemTypeNotFound:
		e.Hint = "no such route: is --url where the admin API is mounted?"
	}
	return e
}

// firstLine is the start of a body that is not a problem detail, for an
// error message.
func firstLine(body []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return truncate(printable(s, false), 200)
}

// list gets up to limit items (0: all) of a list route, following
// nextCursor, pageMax at a time. next is the cursor of the rest, if any;
// more reports that there is a rest, even without a cursor to it (an API
// that ignores limit answers more than asked, and the extra items are
// dropped). Pages that do not end (a cursor repeated, an empty page with a
// cursor, more than maxPages) are an error.
func (c *apiClient) list(ctx context.Context, route string, query url.Values, limit, pageMax int) (items []json.RawMessage, next string, more bool, err error) {
	if query == nil {
		query = url.Values{}
	}
	var pages pager
	for {
		size := pageMax
		if limit > 0 {
			size = min(pageMax, limit-len(items))
		}
		query.Set("limit", strconv.Itoa(size))
		raw, err := c.do(ctx, http.MethodGet, []string{route}, query, nil, http.StatusOK)
		if err != nil {
			return nil, "", false, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, "", false, fmt.Errorf("decoding the %s page: %w", route, err)
		}
		items = append(items, page.Items...)
		next = page.NextCursor
		switch {
		case limit > 0 && len(items) > limit:
			return items[:limit], "", true, nil
		case next == "" || limit > 0 && len(items) == limit:
			return items, next, next != "", nil
		case len(page.Items) == 0:
			return nil, "", false, fmt.Errorf("listing %s: the API answered an empty page with a nextCursor: its pages would not end", route)
		}
		if err := pages.next("listing "+route, next); err != nil {
			return nil, "", false, err
		}
		query.Set("cursor", next)
	}
}

// pager checks that an API's cursors move on.
type pager struct{ seen map[string]bool }

// next checks cursor, the nextCursor of an answer while doing what: new,
// and at most maxPages requests in all.
func (p *pager) next(what, cursor string) error {
	if p.seen[cursor] {
		return fmt.Errorf("%s: the API answered the same nextCursor %q twice: its pages would not end", what, cursor)
	}
	if len(p.seen)+1 >= maxPages {
		return fmt.Errorf("%s: stopped after %d requests: the API's pages do not end", what, maxPages)
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[cursor] = true
	return nil
}

// writeList writes a list as -o json shows it.
func writeList(out io.Writer, items []json.RawMessage, next string) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	b, err := json.Marshal(struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor string            `json:"nextCursor,omitempty"`
	}{items, next})
	if err != nil {
		return err
	}
	return writeJSON(out, b)
}

// writeJSON writes an answer of the API pretty-printed.
func writeJSON(out io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("the API answered JSON that does not parse: %w", err)
	}
	b.WriteByte('\n')
	_, err := out.Write(b.Bytes())
	return err
}

// table writes rows aligned in columns.
type table struct{ w *tabwriter.Writer }

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// cell makes a value fit in a table cell: one line, no tabs, no controls
// (printable), "-" when empty.
func cell(s string) string {
	s = printable(strings.Join(strings.Fields(s), " "), false)
	if s == "" {
		return "-"
	}
	return s
}

// truncate cuts s after n characters, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// formatTime shows a time of the API in UTC, to the second; "-" when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// parseTimeFlag reads a time flag: an RFC 3339 time, or a duration before
// now ("2h", "30m", "7d").
func parseTimeFlag(name, s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, usageErrorf("--%s %q: want an RFC 3339 time (2026-01-02T03:04:05Z) or a duration before now (30m, 2h, 7d)", name, s)
	}
	return now.Add(-d), nil
}

func newAdminEventsCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "List the registered events",
		Long: `events lists the events the application registered (GET /events): their ID,
which subscriptions select, display name, category and plugin. -o json adds
their payload schemas and property paths.`,
		Example: `  outhook admin events
  outhook admin events -o json | jq '.categories[].events[].id'`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			raw, done, err := o.fetch(cmd, http.MethodGet, []string{"events"}, http.StatusOK)
			if err != nil || done {
				return err
			}
			var answer struct {
				Categories []struct {
					Events []struct {
						ID          string `json:"id"`
						DisplayName string `json:"displayName"`
						Category    string `json:"category"`
						Plugin      struct {
							PluginID string `json:"pluginId"`
						} `json:"plugin"`
					} `json:"events"`
				} `json:"categories"`
			}
			if err := json.Unmarshal(raw, &answer); err != nil {
				return fmt.Errorf("decoding the events: %w", err)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "CATEGORY", "PLUGIN")
			for _, cat := range answer.Categories {
				for _, ev := range cat.Events {
					t.row(ev.ID, ev.DisplayName, ev.Category, ev.Plugin.PluginID)
				}
			}
			return t.flush()
		}),
	}
}
