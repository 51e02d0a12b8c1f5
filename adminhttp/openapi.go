package adminhttp

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 document of the API, served at
// GET /openapi.json. TestOpenAPIMatchesRoutes keeps its paths and methods
// equal to the route table.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document that describes the admin API, as
// GET /openapi.json serves it. Its paths are relative to where the handler is
// mounted.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (h *Handler) getOpenAPI(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(openAPIDoc)
	return nil
}
