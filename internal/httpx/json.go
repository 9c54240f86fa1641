package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/headerpolicy"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
)

// DecodeJSON decodes the request body into v strictly: the content type must
// be application/json, the body at most limit bytes, one JSON value with no
// unknown fields and nothing after it.
func DecodeJSON(r *http.Request, limit int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apierror.New(http.StatusUnsupportedMediaType, apierror.UnsupportedMediaType,
			"Content-Type must be application/json")
	}
	body := http.MaxBytesReader(nil, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apierror.Invalid("", "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return apierror.From(err)
	case errors.Is(err, io.EOF):
		return apierror.Invalid("", "request body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return apierror.Invalid("", "request body is not valid JSON")
	case errors.As(err, &typeErr):
		return apierror.Invalid(typeErr.Field, "%s must be %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields.
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apierror.Invalid(field, "unknown field %q", field)
	default:
		var apiErr *apierror.Error
		if errors.As(err, &apiErr) {
			return apiErr // from a field's UnmarshalJSON
		}
		return apierror.Invalid("", "invalid request body: %v", err)
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// WriteJSON writes v as JSON with the given status. Unless the handler set
// its own Cache-Control (public metadata), the response is never cached:
// control-plane responses may carry secrets shown once.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("httpx: encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// BearerToken returns the token of the request's "Authorization: Bearer"
// header; ok is false when there is none or it is empty.
func BearerToken(r *http.Request) (token string, ok bool) {
	token, bearer := ParseBearer(r.Header.Get("Authorization"))
	return token, bearer && token != ""
}

// ParseBearer splits an Authorization header value of the Bearer scheme
// (RFC 6750 §2.1; the scheme is case-insensitive). bearer reports whether the
// scheme is Bearer, however it is separated from the token
// (headerpolicy.Scheme: the header policy removes every such spelling, so
// every such spelling is Tollgate's to verify); token is what follows,
// trimmed, and may be empty.
func ParseBearer(header string) (token string, bearer bool) {
	scheme, token := headerpolicy.Scheme(header)
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}

// Optional is a JSON request field (of a PATCH, typically) that distinguishes absent (Set false), null
// (Null true) and a value.
type Optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON implements json.Unmarshaler; it is only called when the
// field is present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}
