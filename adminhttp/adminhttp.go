package adminhttp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/outhook/outhook"
)

// ErrUnauthenticated is matched by an AuthorizeFunc's error when the request
// carries no credentials, or credentials that are not valid: the handler
// answers 401 Unauthorized. Any other error means the caller is known but
// may not run the operation: 403 Forbidden.
var ErrUnauthenticated = errors.New("adminhttp: unauthenticated")

// AuthorizeFunc decides whether a request may run an operation. It returns
// nil to allow it, an error matching ErrUnauthenticated for 401, and any
// other error for 403. The error's text is never sent to the caller. It runs
// before the request's body is read, and a denied request changes nothing.
//
// op.ReadOnly tells operations that change nothing apart, so that an
// application can give viewers read access only; op.ID names the operation
// as the OpenAPI document does (operationId). For a request that matches no
// route, op is the zero Operation: answer it as for any other request, and
// allowed callers get 404.
type AuthorizeFunc func(r *http.Request, op Operation) error

// Operation is one route of the admin API.
type Operation struct {
	// ID is the operation's operationId in the OpenAPI document, such as
	// "createSubscription".
	ID string
	// Method and Path are the route's HTTP method and path pattern relative
	// to where the handler is mounted, such as "GET" and
	// "/subscriptions/{subscriptionId}".
	Method, Path string
	// ReadOnly reports that the operation changes nothing. SendTest is not
	// read-only: it makes a request to the subscription's destination.
	ReadOnly bool
}

// Options configures a Handler. The zero Options is valid and denies every
// request: an application must set Authorize to open the API.
type Options struct {
	// Authorize decides who may do what. Nil denies every request with 403.
	Authorize AuthorizeFunc
	// Challenge is the WWW-Authenticate header of 401 answers. Empty means
	// `Bearer realm="outhook"`.
	Challenge string
	// Deliverers are listed, with their config schemas, by GET /deliverers
	// so that a UI can build a form per deliverer. Pass the deliverers given
	// to the client (outhook.Config.Deliverers); nil lists none. (The client
	// does not expose them.)
	Deliverers []outhook.Deliverer
	// MaxBodyBytes caps the size of a request body. Zero means 1 MiB.
	MaxBodyBytes int64
	// Logger receives the errors answered with 500. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Handler serves the admin API of one outhook client. Create one with New
// and mount it with http.StripPrefix; it is safe for concurrent use.
type Handler struct {
	client     *outhook.Client
	authorize  AuthorizeFunc
	challenge  string
	deliverers []outhook.Deliverer
	maxBody    int64
	log        *slog.Logger
	mux        *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler for the admin API of client. A nil opts means the
// zero Options, which denies every request.
func New(client *outhook.Client, opts *Options) (*Handler, error) {
	if client == nil {
		return nil, errors.New("adminhttp: New: client is nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("adminhttp: Options.MaxBodyBytes must not be negative, got %d", o.MaxBodyBytes)
	}
	for i, d := range o.Deliverers {
		if d == nil {
			return nil, fmt.Errorf("adminhttp: Options.Deliverers[%d] is nil", i)
		}
	}
	h := &Handler{
		client:     client,
		authorize:  o.Authorize,
		challenge:  o.Challenge,
		deliverers: slices.Clone(o.Deliverers),
		maxBody:    o.MaxBodyBytes,
		log:        o.Logger,
		mux:        http.NewServeMux(),
	}
	if h.challenge == "" {
		h.challenge = `Bearer realm="outhook"`
	}
	if h.maxBody == 0 {
		h.maxBody = 1 << 20
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	for _, rt := range routes {
		h.mux.Handle(rt.Method+" "+rt.Path, h.wrap(rt))
	}
	// Everything else: 404 or 405, as problem details, after authorization.
	h.mux.Handle("/", http.HandlerFunc(h.noRoute))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Operations returns every route of the admin API, in the order of the
// OpenAPI document.
func Operations() []Operation {
	out := make([]Operation, len(routes))
	for i, rt := range routes {
		out[i] = rt.Operation
	}
	return out
}

// route is one entry of the route table.
type route struct {
	Operation
	serve func(h *Handler, w http.ResponseWriter, r *http.Request) error
}

// routes is the route table: the OpenAPI document (openapi.json) describes
// exactly these, as TestOpenAPIMatchesRoutes checks.
//
// Room is left for the rest of the operations API, which needs support the
// root package lacks so far:
//
//	POST /subscriptions/{subscriptionId}/recover   recover failed deliveries since/until a time
//	POST /messages/{messageId}/replay              replay an event to its current subscriptions
//	GET  /deliveries/{deliveryId}/attempts         attempts with their own query and cursor
//	GET  /attempts                                 attempts by subscription, event, status, time
var routes = []route{
	{Operation{"getOpenAPI", "GET", "/openapi.json", true}, (*Handler).getOpenAPI},
	{Operation{"listEvents", "GET", "/events", true}, (*Handler).listEvents},
	{Operation{"getEvent", "GET", "/events/{eventId}", true}, (*Handler).getEvent},
	{Operation{"listDeliverers", "GET", "/deliverers", true}, (*Handler).listDeliverers},
	{Operation{"listSubscriptions", "GET", "/subscriptions", true}, (*Handler).listSubscriptions},
	{Operation{"createSubscription", "POST", "/subscriptions", false}, (*Handler).createSubscription},
	{Operation{"getSubscription", "GET", "/subscriptions/{subscriptionId}", true}, (*Handler).getSubscription},
	{Operation{"updateSubscription", "PUT", "/subscriptions/{subscriptionId}", false}, (*Handler).updateSubscription},
	{Operation{"deleteSubscription", "DELETE", "/subscriptions/{subscriptionId}", false}, (*Handler).deleteSubscription},
	{Operation{"enableSubscription", "POST", "/subscriptions/{subscriptionId}/enable", false}, (*Handler).enableSubscription},
	{Operation{"disableSubscription", "POST", "/subscriptions/{subscriptionId}/disable", false}, (*Handler).disableSubscription},
	{Operation{"testSubscription", "POST", "/subscriptions/{subscriptionId}/test", false}, (*Handler).testSubscription},
	{Operation{"recoverSubscription", "POST", "/subscriptions/{subscriptionId}/recover", false}, (*Handler).recoverSubscription},
	{Operation{"listDeliveries", "GET", "/deliveries", true}, (*Handler).listDeliveries},
	{Operation{"getDelivery", "GET", "/deliveries/{deliveryId}", true}, (*Handler).getDelivery},
	{Operation{"redeliver", "POST", "/deliveries/{deliveryId}/redeliver", false}, (*Handler).redeliver},
	{Operation{"replayMessage", "POST", "/messages/{messageId}/replay", false}, (*Handler).replayMessage},
	{Operation{"listFailedEvents", "GET", "/failed-events", true}, (*Handler).listFailedEvents},
	{Operation{"getDeliveryStats", "GET", "/stats", true}, (*Handler).getDeliveryStats},
}

// wrap authorizes a request for rt and runs it, answering its error as a
// problem detail.
func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.allowed(w, r, rt.Operation) {
			return
		}
		if err := rt.serve(h, w, r); err != nil {
			h.fail(w, r, err, nil)
		}
	})
}

// allowed runs the authorizer and answers 401 or 403 when it denies.
func (h *Handler) allowed(w http.ResponseWriter, r *http.Request, op Operation) bool {
	if h.authorize == nil {
		h.problem(w, r, &Problem{Type: TypeForbidden, Status: http.StatusForbidden,
			Detail: "The admin API has no authorizer: every request is denied."})
		return false
	}
	err := h.authorize(r, op)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", h.challenge)
		h.problem(w, r, &Problem{Type: TypeUnauthenticated, Status: http.StatusUnauthorized,
			Detail: "The request lacks valid credentials."})
	default:
		h.problem(w, r, &Problem{Type: TypeForbidden, Status: http.StatusForbidden,
			Detail: "The caller may not perform this operation."})
	}
	return false
}

// noRoute answers requests that match no route: 405 when the path exists
// with other methods, 404 otherwise.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r, Operation{}) {
		return
	}
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.problem(w, r, &Problem{Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("%s is not allowed here; allowed: %s.", r.Method, strings.Join(allow, ", "))})
		return
	}
	h.problem(w, r, &Problem{Status: http.StatusNotFound, Detail: "No route matches this path."})
}
