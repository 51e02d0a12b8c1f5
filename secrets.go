package outhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// SecretMask stands in for the secret values of a subscription's config in
// everything the client returns: Subscription, Subscriptions and the
// results of CreateSubscription, UpdateSubscription and
// SetSubscriptionEnabled. A deliverer marks a config field secret with
// "writeOnly": true in its ConfigSchema (the invopop tag
// jsonschema:"writeOnly=true"). Deliverers themselves get the real values.
//
// An update may send SecretMask back unchanged for a secret it does not
// mean to change: the stored value is kept. A UI can thus show a config
// form with secrets masked and never receive them.
//
// A URL field whose credentials are secret but whose address is not (a
// webhook endpoint with a token in its query) is marked with the schema
// keyword "x-outhook-secret": "url" (SecretURLKeyword) instead: its
// userinfo password and query values are masked, and the rest is shown
// ("https://example.com/hook?token=[secret]"; a lone username, a bare query
// key and the fragment are masked too). An update that sends the URL back
// with masked parts keeps the stored values of those parts.
//
// Masked secrets are kept only for the same destination: an update that
// changes the scheme, host or port of a URL field while it sends any
// SecretMask back is refused, so that whoever may update a subscription,
// but was never shown its secrets, cannot have them sent to a host of
// their own. A mask that cannot be kept (a new field, a renamed query key,
// another deliverer) is refused too, naming the field (an error matching
// ErrInvalidSubscription); it is never stored.
const SecretMask = "[secret]"

// SecretURLKeyword is the JSON Schema keyword, with the value "url", that
// marks a config field as a URL with secret credentials (see SecretMask).
// With invopop/jsonschema: jsonschema_extras:"x-outhook-secret=url".
const SecretURLKeyword = "x-outhook-secret"

// secretTree marks the secret fields of a config, as read from the
// writeOnly keywords of its JSON Schema.
type secretTree struct {
	secret bool
	url    bool // a URL whose password and query values are secret
	props  map[string]*secretTree
	items  *secretTree // array elements
	values *secretTree // values of an object used as a map
}

// secretsOf reads the secret fields of a config schema. It returns nil when
// the schema marks none.
func secretsOf(schema json.RawMessage) (*secretTree, error) {
	if len(schema) == 0 {
		return nil, nil
	}
	var root map[string]any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("read config schema: %w", err)
	}
	defs, _ := root["$defs"].(map[string]any)
	t := buildSecretTree(root, root, defs, 0)
	if t.empty() {
		return nil, nil
	}
	return t, nil
}

func buildSecretTree(s, root, defs map[string]any, depth int) *secretTree {
	t := &secretTree{}
	if s == nil || depth > 16 { // recursive schemas: secrets deeper than this are not found
		return t
	}
	if ref, ok := s["$ref"].(string); ok {
		switch {
		case ref == "#":
			s = root
		case strings.HasPrefix(ref, "#/$defs/"):
			s, _ = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		if s == nil {
			return t
		}
	}
	t.secret, _ = s["writeOnly"].(bool)
	t.url = s[SecretURLKeyword] == "url"
	if props, ok := s["properties"].(map[string]any); ok {
		for name, p := range props {
			if ps, ok := p.(map[string]any); ok {
				if sub := buildSecretTree(ps, root, defs, depth+1); !sub.empty() {
					if t.props == nil {
						t.props = map[string]*secretTree{}
					}
					t.props[name] = sub
				}
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		if sub := buildSecretTree(items, root, defs, depth+1); !sub.empty() {
			t.items = sub
		}
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		if sub := buildSecretTree(ap, root, defs, depth+1); !sub.empty() {
			t.values = sub
		}
	}
	// Alternatives (such as a nullable field's oneOf): a field secret in any
	// of them is secret.
	for _, key := range []string{"oneOf", "anyOf", "allOf"} {
		alts, _ := s[key].([]any)
		for _, a := range alts {
			if as, ok := a.(map[string]any); ok {
				t.merge(buildSecretTree(as, root, defs, depth+1))
			}
		}
	}
	return t
}

func (t *secretTree) empty() bool {
	return t == nil || !t.secret && !t.url && len(t.props) == 0 && t.items == nil && t.values == nil
}

func (t *secretTree) merge(o *secretTree) {
	if o.empty() {
		return
	}
	t.secret = t.secret || o.secret
	t.url = t.url || o.url
	for name, sub := range o.props {
		if t.props == nil {
			t.props = map[string]*secretTree{}
		}
		if t.props[name] == nil {
			t.props[name] = &secretTree{}
		}
		t.props[name].merge(sub)
	}
	if o.items != nil {
		if t.items == nil {
			t.items = &secretTree{}
		}
		t.items.merge(o.items)
	}
	if o.values != nil {
		if t.values == nil {
			t.values = &secretTree{}
		}
		t.values.merge(o.values)
	}
}

// maskConfig returns config with every secret value that is set replaced
// by SecretMask. Empty and null values stay as they are, so a reader can
// tell a secret that is set from one that is not.
func (t *secretTree) maskConfig(config json.RawMessage) json.RawMessage {
	if t.empty() || len(config) == 0 {
		return config
	}
	doc, err := decodeConfig(config)
	if err != nil {
		// Not JSON we can walk: hide it whole rather than risk a leak.
		return json.RawMessage(`"` + SecretMask + `"`)
	}
	out, err := json.Marshal(t.mask(doc))
	if err != nil {
		return json.RawMessage(`"` + SecretMask + `"`)
	}
	return out
}

func (t *secretTree) mask(v any) any {
	if t.empty() || v == nil {
		return v
	}
	if t.secret {
		if s, ok := v.(string); ok && s == "" {
			return v
		}
		return SecretMask
	}
	if t.url {
		if s, ok := v.(string); ok {
			return maskURL(s)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, el := range v {
			if sub := t.props[k]; sub != nil {
				v[k] = sub.mask(el)
			} else if t.values != nil && t.props == nil {
				v[k] = t.values.mask(el)
			}
		}
	case []any:
		for i, el := range v {
			v[i] = t.items.mask(el)
		}
	}
	return v
}

// restoreConfig returns next with every secret value that is SecretMask
// replaced by the value at the same place in prev, so an update can leave
// secrets it was never shown untouched.
func (t *secretTree) restoreConfig(next, prev json.RawMessage) (json.RawMessage, error) {
	if t.empty() || len(next) == 0 || !bytes.Contains(next, []byte(SecretMask)) && !bytes.Contains(next, []byte(escapedMask)) {
		return next, nil
	}
	n, err := decodeConfig(next)
	if err != nil {
		return next, nil // invalid JSON: the deliverer's validation says so
	}
	p, _ := decodeConfig(prev)
	// A masked secret is kept only for the same destination: otherwise
	// whoever may update a subscription, but was never shown its secrets,
	// could point it at a host of their own and have them sent there.
	nu, pu := map[string]string{}, map[string]string{}
	t.urls(n, "", nu)
	t.urls(p, "", pu)
	for _, path := range slices.Sorted(maps.Keys(nu)) {
		if was, ok := pu[path]; ok && origin(nu[path]) != origin(was) {
			return nil, &maskError{field: path, msg: fmt.Sprintf("the destination changed (%s to %s): masked secrets (%s) are kept only for the same destination; send their values again",
				origin(was), origin(nu[path]), SecretMask)}
		}
	}
	restored := t.restore(n, p)
	if left := t.leftMasks(restored, ""); len(left) > 0 {
		slices.Sort(left)
		return nil, &maskError{field: left[0], msg: fmt.Sprintf("%s stands for a stored secret, and there is none to keep here (%s); send the value", SecretMask, strings.Join(left, ", "))}
	}
	return json.Marshal(restored)
}

// maskError is an update that sends SecretMask where no stored secret can
// be kept.
type maskError struct{ field, msg string }

func (e *maskError) Error() string { return e.field + ": " + e.msg }

func (t *secretTree) restore(next, prev any) any {
	if t.empty() {
		return next
	}
	if t.secret {
		if s, ok := next.(string); ok && s == SecretMask && prev != nil {
			return prev
		}
		return next // with no stored value, a mask stays, for leftMasks to refuse
	}
	if t.url {
		if s, ok := next.(string); ok {
			p, _ := prev.(string)
			return restoreURL(s, p)
		}
	}
	switch n := next.(type) {
	case map[string]any:
		pm, _ := prev.(map[string]any)
		for k, el := range n {
			if sub := t.props[k]; sub != nil {
				n[k] = sub.restore(el, pm[k])
			} else if t.values != nil && t.props == nil {
				n[k] = t.values.restore(el, pm[k])
			}
		}
	case []any:
		pa, _ := prev.([]any)
		for i, el := range n {
			var pe any
			if i < len(pa) {
				pe = pa[i]
			}
			n[i] = t.items.restore(el, pe)
		}
	}
	return next
}

func decodeConfig(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// maskURL masks the parts of a URL that carry credentials: the userinfo
// (the password, or a username that stands alone, as a token does), every
// query value (a key without a value, too), and the fragment. A value that
// does not parse as a URL is masked whole.
func maskURL(raw string) string {
	if raw == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return SecretMask
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), SecretMask)
		} else if u.User.Username() != "" {
			u.User = url.User(SecretMask)
		}
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, pair := range pairs {
			k, v, ok := strings.Cut(pair, "=")
			switch {
			case ok && v != "":
				pairs[i] = k + "=" + SecretMask
			case !ok && k != "":
				pairs[i] = SecretMask // a bare key, such as ?APIKEY
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = SecretMask, ""
	}
	return u.String() // userinfo spells the mask %5Bsecret%5D: brackets are not allowed there
}

// escapedMask is SecretMask as a URL's userinfo spells it.
var escapedMask = url.PathEscape(SecretMask)

// isMask reports whether a URL part, raw or escaped, is SecretMask.
func isMask(part string) bool {
	if part == SecretMask {
		return true
	}
	u, err := url.QueryUnescape(part)
	return err == nil && u == SecretMask
}

// restoreURL puts the stored parts of prev back where next holds
// SecretMask: the userinfo, a query value by its key and rank among the
// values of that key, a bare key by its rank, the fragment. What cannot be
// restored stays masked, for leftMasks to refuse.
func restoreURL(next, prev string) string {
	if !strings.Contains(next, SecretMask) && !strings.Contains(next, escapedMask) {
		return next
	}
	if next == SecretMask {
		return prev // masked whole (see maskURL)
	}
	n, err := url.Parse(next)
	if err != nil {
		return next
	}
	p, err := url.Parse(prev)
	if err != nil {
		return next
	}
	if n.User != nil && p.User != nil {
		npw, nHas := n.User.Password()
		ppw, pHas := p.User.Password()
		switch {
		case nHas && isMask(npw) && pHas && p.User.Username() == n.User.Username():
			n.User = url.UserPassword(n.User.Username(), ppw)
		case !nHas && isMask(n.User.Username()) && !pHas:
			n.User = p.User
		}
	}
	if n.RawQuery != "" {
		stored := map[string][]string{}
		var bare []string
		for _, pair := range strings.Split(p.RawQuery, "&") {
			if k, v, ok := strings.Cut(pair, "="); ok {
				stored[k] = append(stored[k], v)
			} else if k != "" {
				bare = append(bare, k)
			}
		}
		seen := map[string]int{}
		bareSeen := 0
		pairs := strings.Split(n.RawQuery, "&")
		for i, pair := range pairs {
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				if isMask(k) && bareSeen < len(bare) {
					pairs[i] = bare[bareSeen]
				}
				bareSeen++
				continue
			}
			rank := seen[k]
			seen[k]++
			if isMask(v) && rank < len(stored[k]) {
				pairs[i] = k + "=" + stored[k][rank]
			}
		}
		n.RawQuery = strings.Join(pairs, "&")
	}
	if isMask(n.Fragment) {
		n.Fragment, n.RawFragment = p.Fragment, p.RawFragment
	}
	return n.String()
}

// origin is a URL's scheme, host and port, lowercased: where its secrets
// go. A value that does not parse is its own origin.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// urls collects the values of the URL fields (SecretURLKeyword) in v, by
// path.
func (t *secretTree) urls(v any, path string, out map[string]string) {
	if t.empty() || v == nil {
		return
	}
	if t.url {
		if s, ok := v.(string); ok {
			out[path] = s
		}
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, el := range v {
			if sub := t.props[k]; sub != nil {
				sub.urls(el, joinPath(path, k), out)
			} else if t.values != nil && t.props == nil {
				t.values.urls(el, joinPath(path, k), out)
			}
		}
	case []any:
		for i, el := range v {
			t.items.urls(el, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// leftMasks returns the paths of secret values in v that still hold
// SecretMask (whole, or as a part of a URL field).
func (t *secretTree) leftMasks(v any, path string) []string {
	if t.empty() || v == nil {
		return nil
	}
	if s, ok := v.(string); ok {
		if (t.secret && s == SecretMask) || (t.url && (strings.Contains(s, SecretMask) || strings.Contains(s, escapedMask))) {
			return []string{path}
		}
		return nil
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, el := range v {
			if sub := t.props[k]; sub != nil {
				out = append(out, sub.leftMasks(el, joinPath(path, k))...)
			} else if t.values != nil && t.props == nil {
				out = append(out, t.values.leftMasks(el, joinPath(path, k))...)
			}
		}
	case []any:
		for i, el := range v {
			out = append(out, t.items.leftMasks(el, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
