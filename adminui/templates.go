package adminui

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

// Number is the row's place in the list, counted from 1.
func (r *listRow) Number() int { return r.Index + 1 }

// ID is the row's HTML id.
func (r *listRow) ID() string { return htmlID(r.Name) }

// parsePages parses each page template together with the layout, which
// holds the parts pages share.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	fm := template.FuncMap{
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("dict needs pairs")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"list":   func(vs ...string) []string { return vs },
		"htmlid": htmlID,
	}
	for k, v := range funcs {
		fm[k] = v
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		if strings.HasSuffix(name, "/layout.html") {
			continue
		}
		t, err := template.New("").Funcs(fm).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("adminui: template %s: %w", name, err)
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")] = t
	}
	return pages, nil
}
