package outhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/outhook/outhook/internal/ident"
)

// Limits of CEL filter expressions (Filter.Expr).
const (
	// MaxFilterExprLen is the longest Filter.Expr accepted, in Unicode code
	// points.
	MaxFilterExprLen = 4096
	// FilterCostLimit bounds the work of one evaluation of a Filter.Expr,
	// in the cost units of cel-go's runtime cost tracking (about one unit
	// per operation, and one per element a comprehension or a string
	// function visits). An evaluation that goes over it stops and counts as
	// a filter error. Ordinary filters cost well under 100.
	FilterCostLimit = 100_000
)

// maxFilterPrograms bounds the compiled filters a client keeps: one per
// distinct expression and event, about 2 KB each. When it is reached, an
// eighth of them, in no particular order, are forgotten and compiled again
// when next needed.
const maxFilterPrograms = 16384

// filterLogInterval is how often, at most, the evaluation errors of one
// compiled filter are logged; every error is counted (FilterStats.Errors).
const filterLogInterval = time.Minute

// FilterError reports a Filter.Expr that does not compile or does not
// type-check against the payload schema of an event the subscription
// selects. CreateSubscription and UpdateSubscription return it wrapped in a
// *SubscriptionError whose Field is "filter.expr": match it with errors.As.
type FilterError struct {
	// EventID is the event whose payload schema the expression was
	// checked against; empty when it was checked without a schema (the
	// subscription selects no registered event yet).
	EventID string
	// Line and Column locate the problem in the expression, both counted
	// from 1; Column counts Unicode code points. Both are zero when the
	// problem is not at one place (the expression is too long, say).
	Line, Column int
	// Msg says what is wrong, in CEL's words.
	Msg string
}

func (e *FilterError) Error() string {
	var b strings.Builder
	b.WriteString("outhook: filter expression")
	if e.Line > 0 {
		fmt.Fprintf(&b, " at %d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.EventID != "" {
		fmt.Fprintf(&b, " (payload of event %q)", e.EventID)
	}
	return b.String()
}

// FilterStats counts what subscription filters did to events since the
// client was created. Each count is of (event, subscription) pairs that a
// filter kept from being delivered; events that pass are not counted.
// Neither count is a delivery: nothing is recorded in the store.
type FilterStats struct {
	// FilteredOut counts events a subscription's Filter did not select.
	FilteredOut uint64
	// Errors counts events whose Filter.Expr failed to evaluate: a runtime
	// error (a missing key, a division by zero), a result that is not a
	// bool, an evaluation over FilterCostLimit, or an expression that does
	// not compile for an event registered after the subscription was saved.
	// Such an event is not delivered to the subscription, as if the filter
	// had said no, and the error is logged (at most once a minute per
	// expression and event). Errors are not included in FilteredOut.
	Errors uint64
}

// FilterStats returns the client's filter counters.
func (c *Client) FilterStats() FilterStats {
	return FilterStats{FilteredOut: c.filters.filteredOut.Load(), Errors: c.filters.errors.Load()}
}

// filterEngine compiles, caches and counts the CEL filters of a client. Its
// zero value is ready to use.
type filterEngine struct {
	// payloads holds the CEL view of each event's payload schema, by event
	// ID ("" for no schema). Registered events never change, so entries
	// are kept; there is one per event.
	payloads sync.Map // string → *payloadType
	// programs holds compiled filters by expression and event: the same
	// expression in several subscriptions is compiled once per event, and
	// changes to a subscription's other fields keep it. Bounded by
	// maxFilterPrograms.
	programs    sync.Map // programKey → *filterProgram
	nprograms   atomic.Int64
	maxPrograms int64 // zero means maxFilterPrograms; tests set less

	filteredOut atomic.Uint64
	errors      atomic.Uint64
}

type programKey struct{ eventID, expr string }

// filterProgram is a compiled Filter.Expr, or why it does not compile.
type filterProgram struct {
	prg cel.Program
	err *FilterError
	// Throttled logging of evaluation errors.
	lastLog    atomic.Int64 // Unix nanoseconds
	unreported atomic.Int64 // errors since the last log
}

// celEnv is the environment every filter starts from: the standard CEL
// definitions and nothing else. Extensions such as the strings library are
// left out on purpose: functions whose cost cel-go does not track (a
// repeated replace can grow a string exponentially) would escape
// FilterCostLimit.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.ParserExpressionSizeLimit(MaxFilterExprLen),
		// payload.ratio > 1 compares a double with an int, as people expect.
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
	)
})

// checkFilter compiles the subscription's Filter.Expr against the payload
// schema of every registered event that the subscription selects, or
// without a schema (payload is dyn) when it selects none yet. The compiled
// programs stay in the cache for routing.
func (c *Client) checkFilter(s *Subscription) error {
	expr := s.Filter.Expr
	var checked []string
	for _, ev := range s.Events {
		if !ident.IsPattern(ev) {
			if !slices.Contains(checked, ev) {
				checked = append(checked, ev)
			}
			continue
		}
		for _, e := range c.registry.Events() {
			if ident.Match(ev, e.ID) && !slices.Contains(checked, e.ID) {
				checked = append(checked, e.ID)
			}
		}
	}
	if len(checked) == 0 {
		return c.filters.program(nil, expr).error()
	}
	for _, id := range checked {
		rec := c.registry.lookup(id)
		if rec == nil {
			continue // validateSubscription reports unknown events
		}
		if err := c.filters.program(rec, expr).error(); err != nil {
			return err
		}
	}
	return nil
}

// error returns a copy of the compile error, which the cache keeps, or nil.
func (p *filterProgram) error() error {
	if p.err == nil {
		return nil
	}
	e := *p.err
	return &e
}

// filterInput is the payload of one event as filters read it, decoded once
// for all the subscriptions that have filters.
type filterInput struct {
	raw       json.RawMessage
	messageID string // of the event, for logs
	doc       any    // decoded with UseNumber, for Filter.Field
	decoded   bool
	act       *payloadActivation // for Filter.Expr
}

func (in *filterInput) decode(eventID string) (any, error) {
	if !in.decoded {
		dec := json.NewDecoder(bytes.NewReader(in.raw))
		dec.UseNumber()
		if err := dec.Decode(&in.doc); err != nil {
			return nil, poison(fmt.Errorf("outhook: decode payload of event %q for filtering: %w", eventID, err))
		}
		in.decoded = true
	}
	return in.doc, nil
}

// passFilter reports whether the (transformed) payload in passes sub's
// filter, counting the events it turns away. It fails only when the
// payload is not JSON or ctx is done: a filter that fails to evaluate
// counts as not passing.
func (c *Client) passFilter(ctx context.Context, rec *eventRecord, sub *Subscription, in *filterInput) (bool, error) {
	f := sub.Filter
	if f.Field != "" {
		doc, err := in.decode(rec.ID)
		if err != nil {
			return false, err
		}
		if !f.match(doc) {
			c.filters.filteredOut.Add(1)
			c.tel.eventFiltered(ctx, rec.ID)
			return false, nil
		}
	}
	if f.Expr == "" {
		return true, nil
	}
	p := c.filters.program(rec, f.Expr)
	if p.err != nil {
		c.filterError(ctx, p, rec, sub, in, p.err)
		return false, nil
	}
	if in.act == nil {
		doc, err := in.decode(rec.ID)
		if err != nil {
			return false, err
		}
		pt := c.filters.payloadType(rec)
		in.act = &payloadActivation{payload: pt.value(doc, pt.typ)}
	}
	pass, err := evalFilter(ctx, p.prg, in.act)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.filterError(ctx, p, rec, sub, in, err)
		return false, nil
	}
	if !pass {
		c.filters.filteredOut.Add(1)
		c.tel.eventFiltered(ctx, rec.ID)
	}
	return pass, nil
}

// evalFilter runs a compiled filter. A panic in cel-go is an error, like
// any other failed evaluation.
func evalFilter(ctx context.Context, prg cel.Program, act *payloadActivation) (pass bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			pass, err = false, fmt.Errorf("CEL evaluation panicked: %v\n%s", r, debug.Stack())
		}
	}()
	out, _, err := prg.ContextEval(ctx, act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("filter returned %s, not bool", out.Type().(ref.Type).TypeName())
	}
	return bool(b), nil
}

// filterError counts an evaluation error and logs it, at most once per
// filterLogInterval for each compiled filter.
func (c *Client) filterError(ctx context.Context, p *filterProgram, rec *eventRecord, sub *Subscription, in *filterInput, err error) {
	c.filters.errors.Add(1)
	c.tel.filterFailed(ctx, rec.ID)
	p.unreported.Add(1)
	now := time.Now().UnixNano()
	last := p.lastLog.Load()
	if last != 0 && now-last < int64(filterLogInterval) || !p.lastLog.CompareAndSwap(last, now) {
		return
	}
	c.log.WarnContext(ctx, "outhook: subscription filter failed, event not delivered to the subscription",
		"event", rec.ID, "subscription", sub.ID, "message", in.messageID, "errors", p.unreported.Swap(0), "error", err)
}

// payloadActivation binds the variable "payload".
type payloadActivation struct{ payload ref.Val }

func (a *payloadActivation) ResolveName(name string) (any, bool) {
	if name == "payload" {
		return a.payload, true
	}
	return nil, false
}

func (a *payloadActivation) Parent() interpreter.Activation { return nil }

// program returns the compiled filter expr for the event rec (nil: no
// schema), compiling it on a cache miss.
func (e *filterEngine) program(rec *eventRecord, expr string) *filterProgram {
	key := programKey{expr: expr}
	if rec != nil {
		key.eventID = rec.ID
	}
	if p, ok := e.programs.Load(key); ok {
		return p.(*filterProgram)
	}
	p := compileFilter(e.payloadType(rec), expr)
	if p.err != nil && rec != nil {
		p.err.EventID = rec.ID
	}
	if old, loaded := e.programs.LoadOrStore(key, p); loaded {
		return old.(*filterProgram)
	}
	if e.nprograms.Add(1) > e.limit() {
		e.evict()
	}
	return p
}

func (e *filterEngine) limit() int64 {
	if e.maxPrograms > 0 {
		return e.maxPrograms
	}
	return maxFilterPrograms
}

// evict forgets an eighth of the compiled filters.
func (e *filterEngine) evict() {
	n := max(e.limit()/8, 1)
	e.programs.Range(func(k, _ any) bool {
		if _, ok := e.programs.LoadAndDelete(k); ok {
			e.nprograms.Add(-1)
			n--
		}
		return n > 0
	})
}

// compileFilter parses, checks and plans expr.
func compileFilter(pt *payloadType, expr string) (p *filterProgram) {
	p = &filterProgram{}
	if pt.err != nil {
		p.err = &FilterError{Msg: pt.err.Error()}
		return p
	}
	defer func() {
		if r := recover(); r != nil {
			p = &filterProgram{err: &FilterError{Msg: fmt.Sprintf("CEL compiler panicked: %v", r)}}
		}
	}()
	if strings.TrimSpace(expr) == "" {
		p.err = &FilterError{Msg: "expression is empty"}
		return p
	}
	ast, iss := pt.env.Compile(expr)
	if iss.Err() != nil {
		// The first problem CEL can place, or the first one.
		errs := iss.Errors()
		first := errs[0]
		p.err = &FilterError{Msg: first.Message}
		for _, e := range errs {
			if line, col := e.Location.Line(), e.Location.Column(); line > 0 && col >= 0 {
				p.err = &FilterError{Line: line, Column: col + 1, Msg: e.Message}
				break
			}
		}
		return p
	}
	if k := ast.OutputType().Kind(); k != types.BoolKind && k != types.DynKind {
		p.err = &FilterError{Line: 1, Column: 1, Msg: fmt.Sprintf("expression must be a bool, not %s", ast.OutputType())}
		return p
	}
	prg, err := pt.env.Program(ast,
		cel.CostLimit(FilterCostLimit),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		p.err = &FilterError{Msg: err.Error()}
		return p
	}
	p.prg = prg
	return p
}

// payloadType returns the CEL view of rec's payload (nil: no schema).
func (e *filterEngine) payloadType(rec *eventRecord) *payloadType {
	id := ""
	if rec != nil {
		id = rec.ID
	}
	if pt, ok := e.payloads.Load(id); ok {
		return pt.(*payloadType)
	}
	pt := newPayloadType(rec)
	actual, _ := e.payloads.LoadOrStore(id, pt)
	return actual.(*payloadType)
}

// payloadType is the CEL view of one event's payload: the type of the
// variable "payload", the object types it uses, and the environment that
// declares them.
//
// JSON Schema maps to CEL types as follows. "string", "integer", "number"
// and "boolean" are string, int, double and bool. "array" is list(T) of its
// "items". An "object" with "properties" (and no "additionalProperties"
// other than false) is an object type whose fields are its properties, so
// that a misspelt field is an error; an "object" without properties is
// map(string, T) of its "additionalProperties", or map(string, dyn). Local
// "$ref"s are followed, recursion included. A "null" alternative (in
// "type", "oneOf" or "anyOf") is dropped: at run time a null array or map
// property is empty, and any other null property is absent, which has()
// tests. Anything else, such as alternatives of
// different types, is dyn, checked at run time only.
//
// The payload of an event with a TransformPayload is map(string, dyn): its
// schema describes the hook's payload, not what the transform returns.
type payloadType struct {
	env     *cel.Env
	adapter types.Adapter
	typ     *types.Type
	err     error // the schema cannot be used: filters do not compile
	// objects are the object types of the schema, by type name.
	objects map[string]*objectType
}

type objectType struct {
	typ    *types.Type
	fields map[string]*types.FieldType
	names  []string
}

func newPayloadType(rec *eventRecord) *payloadType {
	pt := &payloadType{objects: map[string]*objectType{}}
	base, err := celEnv()
	if err != nil {
		pt.err = fmt.Errorf("CEL environment: %w", err)
		return pt
	}
	switch {
	case rec == nil:
		pt.typ = types.DynType
	case rec.Transformed:
		pt.typ = types.NewMapType(types.StringType, types.DynType)
	default:
		var root schemaNode
		if err := json.Unmarshal(rec.Schema, &root); err != nil {
			pt.err = fmt.Errorf("payload schema of event %q: %w", rec.ID, err)
			return pt
		}
		m := &schemaMapper{pt: pt, root: &root, named: map[*schemaNode]*types.Type{}, busy: map[*schemaNode]bool{}}
		pt.typ = m.typeOf(&root, "payload", 0)
	}
	opts := []cel.EnvOption{cel.Variable("payload", pt.typ)}
	if len(pt.objects) > 0 {
		opts = append(opts, cel.CustomTypeProvider(&payloadProvider{Provider: base.CELTypeProvider(), objects: pt.objects}))
	}
	if pt.env, err = base.Extend(opts...); err != nil {
		pt.err = fmt.Errorf("CEL environment: %w", err)
		return pt
	}
	pt.adapter = pt.env.CELTypeAdapter()
	return pt
}

// value converts a payload decoded with UseNumber to a CEL value of the
// type t, all at once: an event's value is evaluated by every filter of
// the event, and a value converted lazily would be converted again on every
// access. Numbers become int or double as the schema says (by their text
// where it says nothing); a null property is an empty list or map where the
// schema says it is an array or a map, and is left out otherwise.
func (pt *payloadType) value(v any, t *types.Type) ref.Val {
	switch v := v.(type) {
	case string:
		return types.String(v)
	case bool:
		return types.Bool(v)
	case json.Number:
		if t.Kind() != types.DoubleKind {
			if i, err := v.Int64(); err == nil {
				return types.Int(i)
			}
		}
		f, _ := v.Float64()
		return types.Double(f)
	case []any:
		et := types.DynType
		if t.Kind() == types.ListKind {
			et = t.Parameters()[0]
		}
		out := make([]ref.Val, len(v))
		for i, el := range v {
			out[i] = pt.value(el, et)
		}
		return types.NewRefValList(pt.adapter, out)
	case map[string]any:
		var obj *objectType
		vt := types.DynType
		switch t.Kind() {
		case types.MapKind:
			vt = t.Parameters()[1]
		case types.StructKind:
			obj = pt.objects[t.TypeName()]
		}
		out := make(map[ref.Val]ref.Val, len(v))
		for k, el := range v {
			ft := vt
			if obj != nil {
				if f, ok := obj.fields[k]; ok {
					ft = f.Type
				}
			}
			if el == nil {
				// Go encodes empty slices and maps as null, and nil
				// pointers: an array or object is empty, anything else
				// absent.
				switch ft.Kind() {
				case types.ListKind:
					out[types.String(k)] = types.NewRefValList(pt.adapter, nil)
				case types.MapKind:
					out[types.String(k)] = types.NewRefValMap(pt.adapter, nil)
				}
				continue
			}
			out[types.String(k)] = pt.value(el, ft)
		}
		return types.NewRefValMap(pt.adapter, out)
	}
	return types.NullValue
}

// payloadProvider adds the object types of a payload schema to the
// environment's own types.
type payloadProvider struct {
	types.Provider
	objects map[string]*objectType
}

func (p *payloadProvider) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(o.typ), true
	}
	return p.Provider.FindStructType(name)
}

func (p *payloadProvider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return o.names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *payloadProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if o, ok := p.objects[name]; ok {
		f, ok := o.fields[field]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *payloadProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("payload type %s cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

// schemaNode is the part of a JSON Schema that gives CEL types.
type schemaNode struct {
	always   *bool // a boolean schema: true or false
	Ref      string
	Types    []string
	Props    map[string]*schemaNode
	Extra    *schemaNode // additionalProperties
	Items    *schemaNode
	OneOf    []*schemaNode
	AnyOf    []*schemaNode
	AllOf    []*schemaNode
	Defs     map[string]*schemaNode
	OldDefs  map[string]*schemaNode // "definitions", before draft 2019-09
	HasProps bool
}

func (n *schemaNode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == 't' || b[0] == 'f') {
		var v bool
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		n.always = &v
		return nil
	}
	var raw struct {
		Ref     string                 `json:"$ref"`
		Type    json.RawMessage        `json:"type"`
		Props   map[string]*schemaNode `json:"properties"`
		Extra   *schemaNode            `json:"additionalProperties"`
		Items   *schemaNode            `json:"items"`
		OneOf   []*schemaNode          `json:"oneOf"`
		AnyOf   []*schemaNode          `json:"anyOf"`
		AllOf   []*schemaNode          `json:"allOf"`
		Defs    map[string]*schemaNode `json:"$defs"`
		OldDefs map[string]*schemaNode `json:"definitions"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*n = schemaNode{Ref: raw.Ref, Props: raw.Props, Extra: raw.Extra, Items: raw.Items, OneOf: raw.OneOf,
		AnyOf: raw.AnyOf, AllOf: raw.AllOf, Defs: raw.Defs, OldDefs: raw.OldDefs, HasProps: len(raw.Props) > 0}
	if len(raw.Type) > 0 {
		var one string
		if err := json.Unmarshal(raw.Type, &one); err == nil {
			n.Types = []string{one}
		} else if err := json.Unmarshal(raw.Type, &n.Types); err != nil {
			return fmt.Errorf("type: %w", err)
		}
	}
	return nil
}

// isNull reports whether n admits only null.
func (n *schemaNode) isNull() bool {
	return n != nil && len(n.Types) == 1 && n.Types[0] == "null" && n.Ref == ""
}

// maxSchemaDepth bounds the nesting of schemas mapped to CEL types; deeper
// parts are dyn.
const maxSchemaDepth = 32

// schemaMapper maps the nodes of one schema to CEL types.
type schemaMapper struct {
	pt    *payloadType
	root  *schemaNode
	named map[*schemaNode]*types.Type // object nodes already given a type
	busy  map[*schemaNode]bool        // other nodes being mapped: a cycle through them is dyn
}

// typeOf returns the CEL type of n. name names the object type n would
// become.
func (m *schemaMapper) typeOf(n *schemaNode, name string, depth int) *types.Type {
	if n == nil || n.always != nil || depth > maxSchemaDepth {
		return types.DynType
	}
	if t, ok := m.named[n]; ok {
		return t
	}
	if m.busy[n] {
		return types.DynType
	}
	m.busy[n] = true
	defer delete(m.busy, n)

	if n.Ref != "" {
		target, defName := m.resolve(n.Ref)
		if target == nil {
			return types.DynType
		}
		if defName != "" {
			name = defName
		}
		return m.typeOf(target, name, depth+1)
	}
	kinds := slices.DeleteFunc(slices.Clone(n.Types), func(s string) bool { return s == "null" })
	switch {
	case len(kinds) > 1:
		return types.DynType
	case len(kinds) == 0 && len(n.Types) > 0:
		return types.NullType
	case len(kinds) == 0:
		return m.alternatives(n, name, depth)
	}
	switch kinds[0] {
	case "string":
		return types.StringType
	case "integer":
		return types.IntType
	case "number":
		return types.DoubleType
	case "boolean":
		return types.BoolType
	case "array":
		if n.Items == nil {
			return types.NewListType(types.DynType)
		}
		return types.NewListType(m.typeOf(n.Items, name+"_item", depth+1))
	case "object":
		closed := n.Extra == nil || (n.Extra.always != nil && !*n.Extra.always)
		if n.HasProps && closed {
			return m.object(n, name, depth)
		}
		if n.Extra == nil || n.Extra.always != nil {
			return types.NewMapType(types.StringType, types.DynType)
		}
		return types.NewMapType(types.StringType, m.typeOf(n.Extra, name+"_value", depth+1))
	}
	return types.DynType
}

// alternatives maps a node without "type": the one non-null alternative
// of its oneOf, anyOf or allOf, or their common type.
func (m *schemaMapper) alternatives(n *schemaNode, name string, depth int) *types.Type {
	var alts []*schemaNode
	switch {
	case len(n.AllOf) == 1:
		alts = n.AllOf
	case len(n.AllOf) == 0:
		alts = append(slices.Clone(n.OneOf), n.AnyOf...)
	}
	var common *types.Type
	for _, a := range alts {
		if a.isNull() {
			continue
		}
		t := m.typeOf(a, name, depth+1)
		if common != nil && !common.IsExactType(t) {
			return types.DynType
		}
		common = t
	}
	if common == nil {
		return types.DynType
	}
	return common
}

// object declares the object type of n.
func (m *schemaMapper) object(n *schemaNode, name string, depth int) *types.Type {
	for i := 2; m.pt.objects[name] != nil; i++ {
		name = fmt.Sprintf("%s_%d", strings.TrimRight(name, "_0123456789"), i)
	}
	o := &objectType{typ: types.NewObjectType(name), fields: map[string]*types.FieldType{}}
	m.pt.objects[name] = o
	m.named[n] = o.typ
	for _, field := range slices.Sorted(func(yield func(string) bool) {
		for k := range n.Props {
			if !yield(k) {
				return
			}
		}
	}) {
		o.fields[field] = &types.FieldType{Type: m.typeOf(n.Props[field], name+"_"+field, depth+1)}
		o.names = append(o.names, field)
	}
	return o.typ
}

// resolve finds the target of a local $ref and the name of its definition.
func (m *schemaMapper) resolve(ref string) (*schemaNode, string) {
	switch {
	case ref == "#":
		return m.root, ""
	case strings.HasPrefix(ref, "#/$defs/"):
		name := unescapePointer(strings.TrimPrefix(ref, "#/$defs/"))
		return m.root.Defs[name], name
	case strings.HasPrefix(ref, "#/definitions/"):
		name := unescapePointer(strings.TrimPrefix(ref, "#/definitions/"))
		return m.root.OldDefs[name], name
	}
	return nil, ""
}

func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}
