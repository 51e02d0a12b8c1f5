package adminui

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/outhook/outhook/adminhttp"
)

// MinTokenLen is the shortest token NewTokenAuth accepts.
const MinTokenLen = 16

// TokenAuth guards a console and its admin API with one shared token, for
// development, demos and small deployments where the application has no
// sign-in of its own. Programs (the outhook CLI, scripts) send the token as
// "Authorization: Bearer <token>"; the console's sign-in page (see
// Options.Login) asks for it once and keeps the browser signed in with a
// session cookie derived from it. Changing the token signs every browser
// out. Every caller with the token may do everything: an application that
// needs roles should write its own adminhttp.AuthorizeFunc.
type TokenAuth struct {
	token   []byte
	session string
}

// NewTokenAuth returns a TokenAuth for token, which must be at least
// MinTokenLen characters of printable ASCII; NewToken makes one.
func NewTokenAuth(token string) (*TokenAuth, error) {
	if utf8.RuneCountInString(token) < MinTokenLen {
		return nil, fmt.Errorf("adminui: NewTokenAuth: the token must be at least %d characters long", MinTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return nil, fmt.Errorf("adminui: NewTokenAuth: the token must be printable ASCII without spaces")
		}
	}
	// The cookie holds an HMAC of a fixed label under the token, not the
	// token itself, so that a leaked cookie does not give the bearer token.
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("outhook console session v1"))
	return &TokenAuth{token: []byte(token), session: base64.RawURLEncoding.EncodeToString(mac.Sum(nil))}, nil
}

// NewToken returns a random token for NewTokenAuth: 32 random bytes in
// base64url.
func NewToken() string { return newToken() }

// Authorize is an adminhttp.AuthorizeFunc: it allows a request that
// carries the token as a bearer credential, or the console's session
// cookie, and answers every other with adminhttp.ErrUnauthenticated.
func (a *TokenAuth) Authorize(r *http.Request, _ adminhttp.Operation) error {
	if a.Valid(r) {
		return nil
	}
	return adminhttp.ErrUnauthenticated
}

// Valid reports whether r carries the token as a bearer credential, or
// the session cookie. A request with another Authorization scheme (a proxy's
// Basic credentials, say) is judged by its cookie.
func (a *TokenAuth) Valid(r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return a.check(strings.TrimSpace(tok))
		}
	}
	ck, err := r.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(a.session)) == 1
}

// check compares a presented token with the token in constant time.
func (a *TokenAuth) check(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), a.token) == 1
}
