// Package jsonscalar reads the text of a decoded JSON scalar, the one rule
// that payload filters, ordering keys and the deliverers' renderers share.
package jsonscalar

import (
	"encoding/json"
	"strconv"
)

// Text returns the text of a JSON scalar decoded with UseNumber: a string
// as it is, a number as written, a boolean as true or false. Other values
// (null, objects, arrays) give false.
func Text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
