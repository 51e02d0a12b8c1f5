package adminui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
)

// subscriptionForm is the create and edit page of a subscription.
type subscriptionForm struct {
	Editing    bool
	ID         string
	Name       string
	Deliverers []string
	Deliverer  string
	Categories []pickCategory
	Patterns   string
	FilterExpr string
	// FilterField and FilterAnyOf are the filter's simple form.
	FilterField string
	FilterAnyOf string
	// Rate, Burst and MaxInFlight are the subscription's limits.
	Rate, Burst, MaxInFlight string
	// Warning tells that the subscription's deliverer is not listed.
	Warning string
	Fields  []*field
	// Errors holds the problems of the fields outside the config, by name
	// ("name", "events", "filter.expr"), and Summary those that match no
	// field.
	Errors  map[string]string
	Summary []string
	// Problem is the admin API's detail when the save was refused.
	Problem string
	// Invalid reports that the form was refused: some field has a problem.
	Invalid bool
}

type pickCategory struct {
	Name   string
	Events []pickEvent
}

type pickEvent struct {
	ID, DisplayName string
	Checked         bool
}

// topFields are the subscription's own inputs, for placing the admin API's
// validation errors; "config" catches config problems no input matches.
var topFields = []string{"name", "events", "delivererId", "filter", "filter.expr", "filter.field", "filter.anyOf",
	"limits", "limits.rate", "limits.burst", "limits.maxInFlight", "config"}

// subscriptionBody is what the console sends to create or replace a
// subscription.
type subscriptionBody struct {
	Name        string          `json:"name,omitempty"`
	Events      []string        `json:"events"`
	DelivererID string          `json:"delivererId"`
	Config      map[string]any  `json:"config"`
	Filter      *outhook.Filter `json:"filter,omitempty"`
	Limits      *limitsBody     `json:"limits,omitempty"`
}

// limitsBody is outhook.DeliveryLimits as the form has it: numbers kept as
// typed, so that a refused form shows them again.
type limitsBody struct {
	Rate        json.Number `json:"rate,omitempty"`
	Burst       json.Number `json:"burst,omitempty"`
	MaxInFlight json.Number `json:"maxInFlight,omitempty"`
}

func (c *Console) newSubscription(w http.ResponseWriter, r *http.Request) error {
	form, dels, err := c.formBase(r, r.URL.Query().Get("deliverer"))
	if err != nil {
		return err
	}
	if err := form.fill(dels, subscriptionBody{DelivererID: form.Deliverer}); err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "subform", "New subscription", "subscriptions", form)
	return nil
}

func (c *Console) editSubscription(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var s outhook.Subscription
	if err := c.call(r, "GET", "/subscriptions/"+url.PathEscape(id), nil, nil, &s); err != nil {
		return err
	}
	deliverer := s.DelivererID
	if d := r.URL.Query().Get("deliverer"); d != "" {
		deliverer = d
	}
	form, dels, err := c.formBase(r, deliverer)
	if err != nil {
		return err
	}
	form.Editing, form.ID = true, s.ID
	body := subscriptionBody{Name: s.Name, Events: s.Events, DelivererID: form.Deliverer, Filter: s.Filter}
	if l := s.Limits; l != (outhook.DeliveryLimits{}) {
		body.Limits = &limitsBody{Rate: number(l.Rate != 0, strconv.FormatFloat(l.Rate, 'f', -1, 64)),
			Burst: number(l.Burst != 0, strconv.Itoa(l.Burst)), MaxInFlight: number(l.MaxInFlight != 0, strconv.Itoa(l.MaxInFlight))}
	}
	switch {
	case form.Deliverer == s.DelivererID:
		body.Config = decodeConfig(s.Config)
	case r.URL.Query().Get("deliverer") == "":
		form.Warning = fmt.Sprintf("This subscription's deliverer %q is not among the admin API's deliverers: saving it sends it to %q instead.", s.DelivererID, form.Deliverer)
	}
	if err := form.fill(dels, body); err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "subform", "Edit "+displayName(s), "subscriptions", form)
	return nil
}

// number is text as a JSON number when set is true, else empty.
func number(set bool, text string) json.Number {
	if !set {
		return ""
	}
	return json.Number(text)
}

func displayName(s outhook.Subscription) string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

func (c *Console) createSubscription(w http.ResponseWriter, r *http.Request) error {
	return c.saveSubscription(w, r, "")
}

func (c *Console) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	return c.saveSubscription(w, r, r.PathValue("id"))
}

// saveSubscription reads the form, and creates (id empty) or replaces the
// subscription through the admin API. A refused form is shown again with
// each problem next to its input; secret inputs are never filled back in.
func (c *Console) saveSubscription(w http.ResponseWriter, r *http.Request, id string) error {
	pf := r.PostForm
	form, dels, err := c.formBase(r, pf.Get("delivererId"))
	if err != nil {
		return err
	}
	form.Editing, form.ID = id != "", id
	if pf.Get("action") == "change-deliverer" {
		// The deliverer was changed without JavaScript: show its form.
		body := readTop(pf)
		body.Limits = readLimits(pf, fieldErrors{})
		body.DelivererID = form.Deliverer
		if err := form.fill(dels, body); err != nil {
			return err
		}
		c.render(w, r, http.StatusOK, "subform", form.title(), "subscriptions", form)
		return nil
	}
	local := fieldErrors{}
	body := readTop(pf)
	body.Limits = readLimits(pf, local)
	body.DelivererID = form.Deliverer
	body.Config, err = parseConfig(dels[form.Deliverer], pf, local)
	if err != nil {
		return fmt.Errorf("deliverer %q: config schema: %w", form.Deliverer, err)
	}
	if len(body.Events) == 0 {
		local.add("events", "choose at least one event or write a pattern")
	}
	var problem *apiError
	if len(local) == 0 {
		var saved outhook.Subscription
		if id == "" {
			err = c.call(r, "POST", "/subscriptions", nil, body, &saved)
		} else {
			err = c.call(r, "PUT", "/subscriptions/"+url.PathEscape(id), nil, body, &saved)
		}
		if err == nil {
			done := "created"
			if id != "" {
				done = "updated"
			}
			c.redirect(w, r, "/subscriptions/"+url.PathEscape(saved.ID)+"?done="+done)
			return nil
		}
		if !errors.As(err, &problem) || problem.Status != http.StatusBadRequest && problem.Status != http.StatusConflict {
			return err
		}
		for _, fp := range problem.Problem.Errors {
			msg := fp.Detail
			if fp.Line > 0 {
				msg = fmt.Sprintf("line %d, column %d: %s", fp.Line, fp.Column, fp.Detail)
			}
			local.add(fp.Field, msg)
		}
		if len(problem.Problem.Errors) == 0 {
			form.Problem = problem.Problem.Detail
			form.Invalid = true
		}
	}
	if err := form.fill(dels, body); err != nil {
		return err
	}
	form.place(local)
	c.render(w, r, http.StatusUnprocessableEntity, "subform", form.title(), "subscriptions", form)
	return nil
}

func (f *subscriptionForm) title() string {
	if f.Editing {
		return "Edit subscription"
	}
	return "New subscription"
}

// readTop reads the subscription's own inputs from a submitted form.
func readTop(pf url.Values) subscriptionBody {
	body := subscriptionBody{Name: strings.TrimSpace(pf.Get("name"))}
	for _, e := range pf["events"] {
		if e = strings.TrimSpace(e); e != "" && !slices.Contains(body.Events, e) {
			body.Events = append(body.Events, e)
		}
	}
	for _, p := range nonEmptyLines(pf.Get("eventPatterns")) {
		if !slices.Contains(body.Events, p) {
			body.Events = append(body.Events, p)
		}
	}
	expr := strings.TrimSpace(pf.Get("filter.expr"))
	field := strings.TrimSpace(pf.Get("filter.field"))
	var anyOf []string
	for _, v := range strings.Split(pf.Get("filter.anyOf"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			anyOf = append(anyOf, v)
		}
	}
	if expr != "" || field != "" || len(anyOf) > 0 {
		body.Filter = &outhook.Filter{Expr: expr, Field: field, AnyOf: anyOf}
	}
	return body
}

// readLimits reads the limits inputs; a value that is not a number is an
// error named after its input.
func readLimits(pf url.Values, errs fieldErrors) *limitsBody {
	var l limitsBody
	set := false
	for _, in := range []struct {
		name string
		kind string
		dst  *json.Number
	}{{"limits.rate", "number", &l.Rate}, {"limits.burst", "integer", &l.Burst}, {"limits.maxInFlight", "integer", &l.MaxInFlight}} {
		text := strings.TrimSpace(pf.Get(in.name))
		if text == "" {
			continue
		}
		set = true
		v, err := scalarOf(&schema{Type: typeList{in.kind}}, text)
		if err != nil {
			errs.add(in.name, err.Error())
			*in.dst = json.Number(text)
			continue
		}
		*in.dst = v.(json.Number)
	}
	if !set {
		return nil
	}
	return &l
}

// formBase reads the deliverers and events for a form and picks the
// deliverer: the one asked for, else the first.
func (c *Console) formBase(r *http.Request, deliverer string) (*subscriptionForm, map[string]json.RawMessage, error) {
	var dl delivererList
	if err := c.call(r, "GET", "/deliverers", nil, nil, &dl); err != nil {
		return nil, nil, err
	}
	if len(dl.Items) == 0 {
		return nil, nil, &apiError{Status: http.StatusConflict, Problem: adminhttp.Problem{Title: "No deliverers",
			Detail: "The admin API lists no deliverers: give adminhttp.Options.Deliverers the deliverers of the client."}}
	}
	form := &subscriptionForm{Errors: map[string]string{}}
	schemas := map[string]json.RawMessage{}
	for _, d := range dl.Items {
		form.Deliverers = append(form.Deliverers, d.ID)
		schemas[d.ID] = d.ConfigSchema
	}
	form.Deliverer = deliverer
	if _, ok := schemas[deliverer]; !ok {
		form.Deliverer = dl.Items[0].ID
	}
	var evs eventList
	if err := c.call(r, "GET", "/events", nil, nil, &evs); err != nil {
		return nil, nil, err
	}
	for _, cat := range evs.Categories {
		pc := pickCategory{Name: cat.Name}
		for _, ev := range cat.Events {
			pc.Events = append(pc.Events, pickEvent{ID: ev.ID, DisplayName: ev.DisplayName})
		}
		form.Categories = append(form.Categories, pc)
	}
	return form, schemas, nil
}

// fill puts a subscription's values in the form: known event IDs tick
// their boxes, anything else (patterns, events no longer registered) goes
// to the patterns input.
func (f *subscriptionForm) fill(schemas map[string]json.RawMessage, body subscriptionBody) error {
	f.Name = body.Name
	known := map[string]bool{}
	for ci := range f.Categories {
		for ei := range f.Categories[ci].Events {
			ev := &f.Categories[ci].Events[ei]
			known[ev.ID] = true
			ev.Checked = slices.Contains(body.Events, ev.ID)
		}
	}
	var patterns []string
	for _, e := range body.Events {
		if !known[e] {
			patterns = append(patterns, e)
		}
	}
	f.Patterns = strings.Join(patterns, "\n")
	if body.Filter != nil {
		f.FilterExpr, f.FilterField, f.FilterAnyOf = body.Filter.Expr, body.Filter.Field, strings.Join(body.Filter.AnyOf, ", ")
	}
	if body.Limits != nil {
		f.Rate, f.Burst, f.MaxInFlight = body.Limits.Rate.String(), body.Limits.Burst.String(), body.Limits.MaxInFlight.String()
	}
	fields, err := configFields(schemas[f.Deliverer], body.Config)
	if err != nil {
		return fmt.Errorf("deliverer %q: config schema: %w", f.Deliverer, err)
	}
	f.Fields = fields
	return nil
}

// place puts each problem next to its input.
func (f *subscriptionForm) place(problems fieldErrors) {
	top := make([]*field, len(topFields))
	for i, name := range topFields {
		top[i] = &field{Name: name}
	}
	f.Invalid = f.Invalid || len(problems) > 0
	left := attachErrors(append(top, f.Fields...), problems)
	for _, t := range top {
		if t.Error != "" {
			f.Errors[t.Name] = t.Error
		}
	}
	for name, msg := range left {
		f.Summary = append(f.Summary, name+": "+msg)
	}
	slices.Sort(f.Summary)
}
