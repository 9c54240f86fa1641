// Package apierror is the one place where errors become HTTP responses.
//
// Handlers return errors. A *Error carries the status, the error code from
// DESIGN.md and a message that is safe to show; anything else is an internal
// error, logged with the request and answered with a bare 500. Every refusal,
// on the data plane and the control plane, has the same body:
//
//	{"error":{"code":"EXPIRED_TOKEN","message":"access token expired","request_id":"req_..."}}
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/reqinfo"
)

// Code is a machine-readable error code.
type Code string

// Error codes. The first group is the contract of every
// authentication refusal (README, "Error body"); the second covers what any
// HTTP API must answer.
const (
	Unauthorized       Code = "UNAUTHORIZED"        // 401: no credentials
	ExpiredToken       Code = "EXPIRED_TOKEN"       // 401: token or key past its expiry
	InvalidToken       Code = "INVALID_TOKEN"       // 401: malformed, bad signature, revoked
	InvalidCredentials Code = "INVALID_CREDENTIALS" //nolint:gosec // G101: an error code, not a credential
	InvalidSignature   Code = "INVALID_SIGNATURE"   // 401: request signature wrong
	MissingSignature   Code = "MISSING_SIGNATURE"   // 401: request signature absent
	PaymentRequired    Code = "PAYMENT_REQUIRED"    // 402
	Forbidden          Code = "FORBIDDEN"           // 403: no permission, IP not allowed, quota exhausted
	InsufficientScope  Code = "INSUFFICIENT_SCOPE"  // 403
	RateLimited        Code = "RATE_LIMITED"        // 429

	BadRequest           Code = "BAD_REQUEST"            // 400: invalid input
	NotFound             Code = "NOT_FOUND"              // 404
	MethodNotAllowed     Code = "METHOD_NOT_ALLOWED"     // 405
	RequestTimeout       Code = "REQUEST_TIMEOUT"        // 408: the request body did not arrive in time
	Conflict             Code = "CONFLICT"               // 409
	PayloadTooLarge      Code = "PAYLOAD_TOO_LARGE"      // 413
	UnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE" // 415
	Internal             Code = "INTERNAL_ERROR"         // 500
	BadGateway           Code = "BAD_GATEWAY"            // 502
	ServiceUnavailable   Code = "SERVICE_UNAVAILABLE"    // 503
	GatewayTimeout       Code = "GATEWAY_TIMEOUT"        // 504
)

// Reasons refine FORBIDDEN and other codes; they are part of the contract.
const (
	ReasonAccountPending  = "account_pending"
	ReasonAccountDisabled = "account_disabled"
	ReasonIPNotAllowed    = "ip_not_allowed"
	ReasonQuotaExhausted  = "quota_exhausted"
	ReasonInsecureHTTP    = "https_required"
	// Reasons of BAD_REQUEST for a request Tollgate cannot decide on
	// unambiguously (README, "Paths and headers").
	ReasonAmbiguousPath    = "ambiguous_path"     // refused everywhere
	ReasonNonCanonicalPath = "non_canonical_path" // refused by the decision API, which cannot rewrite
	ReasonForgedHeader     = "forged_header"      // refused by the decision API, which cannot strip
	// ReasonOrgDisabled: an operator disabled the credential's
	// organization (see ErrOrgDisabled).
	ReasonOrgDisabled = "organization_disabled"
	// ReasonTooManySessions refines RATE_LIMITED: the credential has as
	// many WebSocket sessions open as it may.
	ReasonTooManySessions = "too_many_sessions"
	// Reasons of INVALID_SIGNATURE.
	ReasonTimestampOutOfWindow = "timestamp_out_of_window"
	ReasonSignatureMismatch    = "mismatch"
	ReasonSignatureReplayed    = "replayed"
	ReasonSignatureMalformed   = "malformed"
	// ReasonReplayCacheFull refines RATE_LIMITED: the credential holds its
	// maximum of signatures (or sign-in nonces) in the replay cache.
	ReasonReplayCacheFull = "replay_cache_full"
)

// Error is an error with a client-facing meaning. Message and Reason are
// sent to the client; Err is not.
type Error struct {
	Status  int
	Code    Code
	Message string
	Reason  string // optional refinement, e.g. "ip_not_allowed"
	Field   string // for BAD_REQUEST: the offending input field
	Header  http.Header
	// Extra are members of the response body beside "error", such as
	// x402's "x402Version" and "accepts" in a 402. Never a secret.
	Extra map[string]any
	Err   error // internal cause, for logs only
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with the given status, code and client-facing message.
func New(status int, code Code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// WithReason returns a copy of e with the reason set.
func (e *Error) WithReason(reason string) *Error {
	c := *e
	c.Reason = reason
	return &c
}

// WithHeader returns a copy of e that also sets the response header k.
func (e *Error) WithHeader(k, v string) *Error {
	c := e.cloneHeader()
	c.Header.Set(k, v)
	return c
}

// AddHeader returns a copy of e with v added to the values of the response
// header k (for headers that may repeat, such as WWW-Authenticate).
func (e *Error) AddHeader(k, v string) *Error {
	c := e.cloneHeader()
	c.Header.Add(k, v)
	return c
}

func (e *Error) cloneHeader() *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = make(http.Header, 1)
	}
	return &c
}

// WithExtra returns a copy of e whose response body also has the member
// key ("error" excepted) set to v.
func (e *Error) WithExtra(key string, v any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	maps.Copy(c.Extra, e.Extra)
	c.Extra[key] = v
	return &c
}

// WithRetryAfter returns a copy of e with a Retry-After header of d rounded up
// to whole seconds (at least 1).
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	return e.WithHeader("Retry-After", RetryAfter(d))
}

// RetryAfter renders d as a Retry-After value: whole seconds, rounded up, at
// least 1.
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, Seconds(d)), 10)
}

// Seconds is d in whole seconds, rounded up, so that a client that waits
// that long is never early.
func Seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Wrap returns a copy of e that records cause for the logs.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// Invalid returns a 400 BAD_REQUEST about one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: BadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Common errors. Use the With* methods to refine them; they copy.
var (
	ErrUnauthorized       = New(http.StatusUnauthorized, Unauthorized, "authentication required")
	ErrInvalidCredentials = New(http.StatusUnauthorized, InvalidCredentials, "invalid credentials")
	ErrNotFound           = New(http.StatusNotFound, NotFound, "not found")
	ErrForbidden          = New(http.StatusForbidden, Forbidden, "forbidden")
	// ErrOrgDisabled refuses every credential, token, wallet and login of
	// an organization an operator disabled, until it is enabled again.
	ErrOrgDisabled = New(http.StatusForbidden, Forbidden, "this organization is disabled; contact the operator").
			WithReason(ReasonOrgDisabled)
)

// body is the wire shape of every error response.
type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Reason    string `json:"reason,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// From converts any error into an *Error: an *Error found with errors.As is
// returned as is, an error reporting Unavailable() true (a store that cannot
// be reached) becomes 503 with Retry-After, a request body over its limit
// becomes 413, and anything else becomes a 500 that keeps err as its
// internal cause.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var down interface{ Unavailable() bool }
	if errors.As(err, &down) && down.Unavailable() {
		return New(http.StatusServiceUnavailable, ServiceUnavailable, "temporarily unavailable, try again shortly").
			WithRetryAfter(5 * time.Second).Wrap(err)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return New(http.StatusRequestEntityTooLarge, PayloadTooLarge,
			fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit)).Wrap(err)
	}
	return New(http.StatusInternalServerError, Internal, "internal error").Wrap(err)
}

// Write sends err as the JSON error body and records it in the request's
// reqinfo.Info for the access log.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	e := From(err)
	info := reqinfo.From(r.Context())
	info.ErrorCode = string(e.Code)
	info.Reason = e.Reason
	if e.Err != nil {
		info.Err = e.Err
	}
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	b := encode(e, info.ID)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}

// Encode returns the JSON body Write sends for err in answer to r, without
// its final newline.
func Encode(r *http.Request, err error) []byte {
	return encode(From(err), reqinfo.From(r.Context()).ID)
}

func encode(e *Error, requestID string) []byte {
	be := bodyError{
		Code:      e.Code,
		Message:   e.Message,
		Reason:    e.Reason,
		Field:     e.Field,
		RequestID: requestID,
	}
	var b []byte
	if len(e.Extra) == 0 {
		b, _ = json.Marshal(body{Error: be})
	} else {
		m := make(map[string]any, len(e.Extra)+1)
		maps.Copy(m, e.Extra)
		m["error"] = be
		b, _ = json.Marshal(m)
	}
	return b
}

// HandlerFunc is an HTTP handler that returns an error instead of writing it.
// A handler that returns an error must not have written a response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and writes any error it returns with Write.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		Write(w, r, err)
	}
}
