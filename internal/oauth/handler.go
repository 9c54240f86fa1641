package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// Paths of the authorization server's endpoints.
const (
	TokenPath      = "/oauth/token" //nolint:gosec // G101: a path, not a credential
	RevokePath     = "/oauth/revoke"
	IntrospectPath = "/oauth/introspect"
	MetadataPath   = "/.well-known/oauth-authorization-server"
	JWKSPath       = "/.well-known/jwks.json"
)

// Handler serves the token, revocation and introspection endpoints and the
// RFC 8414 metadata. baseURL is the server's public URL, the base of the
// endpoint URLs in the metadata.
func (s *Service) Handler(baseURL string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+TokenPath, s.endpoint(s.token))
	mux.Handle("POST "+RevokePath, s.endpoint(s.revoke))
	mux.Handle("POST "+IntrospectPath, s.endpoint(s.introspect))
	meta := s.metadata(strings.TrimSuffix(baseURL, "/"))
	mux.HandleFunc("GET "+MetadataPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_ = httpx.WriteJSON(w, http.StatusOK, meta)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			httpx.NotFoundOrMethod(mux, w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Metadata is the authorization server metadata (RFC 8414 §2).
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
}

func (s *Service) metadata(base string) Metadata {
	auth := []string{"client_secret_basic", "client_secret_post"}
	return Metadata{
		Issuer:                                    s.o.Issuer,
		TokenEndpoint:                             base + TokenPath,
		JWKSURI:                                   base + JWKSPath,
		RevocationEndpoint:                        base + RevokePath,
		IntrospectionEndpoint:                     base + IntrospectPath,
		ResponseTypesSupported:                    []string{}, // no authorization endpoint
		GrantTypesSupported:                       []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported:         auth,
		RevocationEndpointAuthMethodsSupported:    auth,
		IntrospectionEndpointAuthMethodsSupported: auth,
	}
}

// request is a parsed endpoint request: its form and the authenticated app.
type request struct {
	form url.Values
	app  store.App
}

// endpoint wraps a client-authenticated endpoint: it parses the form body,
// authenticates the client and writes errors in the RFC 6749 §5.2 format,
// except a body over Options.MaxBody, which gets 413 PAYLOAD_TOO_LARGE in
// the common error body, as on the JSON API.
func (s *Service) endpoint(h func(http.ResponseWriter, *http.Request, request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		req, err := s.parse(w, r)
		if err == nil {
			err = h(w, r, req)
		}
		var tooLarge *http.MaxBytesError
		switch {
		case err == nil:
		case errors.As(err, &tooLarge):
			apierror.Write(w, r, err)
		default:
			writeError(w, r, err)
		}
	})
}

func (s *Service) parse(w http.ResponseWriter, r *http.Request) (request, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return request{}, oauthError(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	// Bound the body before reading any of it: a declared length over the
	// limit is refused unread, any other body is cut at the limit.
	if r.ContentLength > s.o.MaxBody {
		return request{}, &http.MaxBytesError{Limit: s.o.MaxBody}
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return request{}, err
		}
		return request{}, oauthError(http.StatusBadRequest, "invalid_request", "malformed form body")
	}
	form := r.PostForm
	for k, vs := range form {
		if len(vs) > 1 { // RFC 6749 §3.2
			return request{}, oauthError(http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
		}
	}
	for _, k := range []string{"client_secret", "token"} {
		if r.URL.Query().Has(k) {
			return request{}, oauthError(http.StatusBadRequest, "invalid_request", k+" must not be sent in the URL")
		}
	}
	c, err := clientOf(r, form)
	if err != nil {
		return request{}, err
	}
	app, err := s.AuthenticateClient(r.Context(), c, reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		return request{}, err
	}
	return request{form: form, app: app}, nil
}

// clientOf reads the client authentication: HTTP Basic (client_secret_basic,
// with RFC 6749 §2.3.1's form-encoding of ID and secret) or the form
// (client_secret_post), never both.
func clientOf(r *http.Request, form url.Values) (c Client, err error) {
	inForm := form.Has("client_id") || form.Has("client_secret")
	h := r.Header.Get("Authorization")
	if h == "" {
		if !inForm {
			return c, errInvalidClient
		}
		return Client{ID: form.Get("client_id"), Secret: form.Get("client_secret")}, nil
	}
	scheme, payload, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return c, oauthError(http.StatusBadRequest, "invalid_request", "client authentication must use the Basic scheme")
	}
	if form.Has("client_secret") {
		return c, oauthError(http.StatusBadRequest, "invalid_request", "use one client authentication method, not two")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return c, errInvalidClient
	}
	id, secret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return c, errInvalidClient
	}
	if c.ID, err = url.QueryUnescape(id); err != nil {
		return c, errInvalidClient
	}
	if c.Secret, err = url.QueryUnescape(secret); err != nil {
		return c, errInvalidClient
	}
	if v := form.Get("client_id"); v != "" && v != c.ID {
		return c, oauthError(http.StatusBadRequest, "invalid_request", "client_id differs from the authenticated client")
	}
	return c, nil
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		// Not an OAuth error: the store or counters failed.
		ae := apierror.From(err)
		e = &Error{Status: ae.Status, Code: "server_error", Description: "the authorization server failed", Err: err}
		if ae.Status == http.StatusServiceUnavailable {
			e.Code = "temporarily_unavailable"
		}
	}
	info := reqinfo.From(r.Context())
	info.ErrorCode = e.Code
	info.Err = e.Err
	h := w.Header()
	if e.Code == "invalid_client" {
		// Required when the client tried Basic (RFC 6749 §5.2); it also
		// tells a client that tried the form which scheme works.
		h.Set("WWW-Authenticate", `Basic realm="tollgate", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", apierror.RetryAfter(e.RetryAfter))
	}
	body := map[string]string{"error": e.Code, "error_description": e.Description}
	if info.ID != "" {
		body["request_id"] = info.ID
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// token is the token endpoint (RFC 6749 §4.4.2).
func (s *Service) token(w http.ResponseWriter, r *http.Request, req request) error {
	switch gt := req.form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	scopes, err := ParseScope(req.form.Get("scope"))
	if err != nil {
		return err
	}
	org, err := s.store.GetOrganization(r.Context(), req.app.OrgID)
	if err != nil {
		return err
	}
	if org.Disabled() {
		// RFC 6749 §5.2: the client is authenticated but may not be
		// granted a token.
		return oauthError(http.StatusBadRequest, "unauthorized_client", "the client's organization is disabled ("+apierror.ReasonOrgDisabled+")")
	}
	tok, err := s.Issue(req.app, scopes)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, tok)
}

// revoke is the revocation endpoint (RFC 7009 §2.1).
func (s *Service) revoke(w http.ResponseWriter, r *http.Request, req request) error {
	if !req.form.Has("token") {
		return oauthError(http.StatusBadRequest, "invalid_request", "token is required")
	}
	actor := store.Actor{Type: store.ActorApp, ID: req.app.ClientID, IP: reqinfo.From(r.Context()).ClientIP.String()}
	if _, err := s.Revoke(r.Context(), req.app, req.form.Get("token"), actor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// introspect is the introspection endpoint (RFC 7662 §2.1).
func (s *Service) introspect(w http.ResponseWriter, r *http.Request, req request) error {
	if !req.form.Has("token") {
		return oauthError(http.StatusBadRequest, "invalid_request", "token is required")
	}
	res, err := s.Introspect(r.Context(), req.app, req.form.Get("token"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, res)
}
