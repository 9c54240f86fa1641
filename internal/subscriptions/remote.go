package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxFacilitatorAnswer bounds a facilitator's answer, in bytes.
const maxFacilitatorAnswer = 64 << 10

// Remote is a facilitator reached through x402's facilitator HTTP API:
// POST /verify, POST /settle and GET /supported under its base URL. It
// sends each the payer's PaymentPayload exactly as received and the
// offer's PaymentRequirements, in the payment's protocol version. It is
// safe for concurrent use.
type Remote struct {
	base      string // without a trailing "/"
	authName  string
	authValue string
	client    *http.Client
	userAgent string
}

// RemoteOptions configure a Remote. URL is required.
type RemoteOptions struct {
	// URL is the facilitator's base URL, e.g. "https://x402.org/facilitator".
	URL string
	// AuthHeader, if set, is sent with every call: "Name: value".
	AuthHeader string
	// Timeout bounds each call. Default 10s.
	Timeout time.Duration
	// Transport sends the calls; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// UserAgent names the caller. Default "tollgate".
	UserAgent string
}

// NewRemote returns the facilitator at o.URL.
func NewRemote(o RemoteOptions) (*Remote, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("subscriptions: facilitator URL %q: an http(s) URL without query or fragment is required", o.URL)
	}
	r := &Remote{base: strings.TrimRight(o.URL, "/"), userAgent: o.UserAgent}
	if o.AuthHeader != "" {
		name, value, ok := strings.Cut(o.AuthHeader, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(value) == "" {
			return nil, errors.New(`subscriptions: facilitator auth header: want "Name: value"`)
		}
		r.authName, r.authValue = http.CanonicalHeaderKey(strings.TrimSpace(name)), strings.TrimSpace(value)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if r.userAgent == "" {
		r.userAgent = "tollgate"
	}
	transport := o.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	r.client = &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		// A facilitator that redirects would get the payment, and the
		// auth header, somewhere the operator did not configure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r, nil
}

// Name implements Facilitator: the base URL.
func (r *Remote) Name() string { return r.base }

// facilitatorRequest is the body of POST /verify and POST /settle.
type facilitatorRequest struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements any             `json:"paymentRequirements"`
}

// verifyResponse is x402's VerifyResponse.
type verifyResponse struct {
	IsValid        *bool  `json:"isValid"`
	InvalidReason  string `json:"invalidReason"`
	InvalidMessage string `json:"invalidMessage"`
	Payer          string `json:"payer"`
}

// settleResponse is x402's SettlementResponse.
type settleResponse struct {
	Success      *bool  `json:"success"`
	ErrorReason  string `json:"errorReason"`
	ErrorMessage string `json:"errorMessage"`
	Payer        string `json:"payer"`
	Transaction  string `json:"transaction"`
	Network      string `json:"network"`
}

// Verify implements Facilitator: POST /verify. An answer with isValid
// false is a refusal (ErrPaymentInvalid, with the facilitator's reason); a
// failed call, an error status without a verdict or an answer that names
// another payer is an error.
func (r *Remote) Verify(ctx context.Context, p Payment, req Requirement) error {
	var v verifyResponse
	if err := r.call(ctx, "/verify", p, req, &v, func() bool { return v.IsValid != nil }); err != nil {
		return err
	}
	if !*v.IsValid {
		return fmt.Errorf("%w: %s", ErrPaymentInvalid, reason(v.InvalidReason, v.InvalidMessage))
	}
	if v.Payer != "" && !strings.EqualFold(v.Payer, p.Authorization.From.Hex()) {
		return fmt.Errorf("subscriptions: facilitator %s verified payer %q, the authorization is from %s", r.base, v.Payer, p.Authorization.From.Hex())
	}
	return nil
}

// Settle implements Facilitator: POST /settle. An answer with success
// false is a refusal (ErrPaymentInvalid, with the facilitator's reason); a
// success must name the transaction, and the network if it names one must
// be the offer's.
func (r *Remote) Settle(ctx context.Context, p Payment, req Requirement) (string, error) {
	var s settleResponse
	if err := r.call(ctx, "/settle", p, req, &s, func() bool { return s.Success != nil }); err != nil {
		return "", err
	}
	switch {
	case !*s.Success:
		return "", fmt.Errorf("%w: settlement failed: %s", ErrPaymentInvalid, reason(s.ErrorReason, s.ErrorMessage))
	case s.Transaction == "" || len(s.Transaction) > 256:
		return "", fmt.Errorf("subscriptions: facilitator %s settled without a transaction reference", r.base)
	case s.Network != "" && s.Network != req.Network && s.Network != v1Networks[req.Network]:
		return "", fmt.Errorf("subscriptions: facilitator %s settled on %q, the offer is on %s", r.base, s.Network, req.Network)
	case s.Payer != "" && !strings.EqualFold(s.Payer, p.Authorization.From.Hex()):
		return "", fmt.Errorf("subscriptions: facilitator %s settled for payer %q, the authorization is from %s", r.base, s.Payer, p.Authorization.From.Hex())
	}
	return s.Transaction, nil
}

// reason renders a facilitator's reason code and message.
func reason(code, msg string) string {
	code, msg = clip(code), clip(msg)
	switch {
	case code == "" && msg == "":
		return "no reason given"
	case msg == "":
		return code
	case code == "":
		return msg
	}
	return code + ": " + msg
}

// clip bounds a facilitator's text passed on to the payer.
func clip(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "")
}

// Kind is one payment kind a facilitator supports.
type Kind struct {
	X402Version int    `json:"x402Version"`
	Scheme      string `json:"scheme"`
	Network     string `json:"network"`
}

// Supported asks the facilitator which payment kinds it supports: GET
// /supported.
func (r *Remote) Supported(ctx context.Context) ([]Kind, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/supported", nil)
	if err != nil {
		return nil, err
	}
	var s struct {
		Kinds []Kind `json:"kinds"`
	}
	status, err := r.do(hreq, &s)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("subscriptions: facilitator %s/supported: status %d", r.base, status)
	}
	return s.Kinds, nil
}

// Supports reports whether kinds include the exact scheme on network in
// protocol version 2 or 1.
func Supports(kinds []Kind, network string) bool {
	for _, k := range kinds {
		if k.Scheme == "exact" && ((k.X402Version == 2 && k.Network == network) ||
			(k.X402Version == 1 && (k.Network == network || k.Network == v1Networks[network]))) {
			return true
		}
	}
	return false
}

// call POSTs the payment and the offer's requirements to path and decodes
// the answer into out. An answer is taken whatever its status when it
// carries a verdict (decided reports whether it does): facilitators answer
// refusals with 200 or 400.
func (r *Remote) call(ctx context.Context, path string, p Payment, req Requirement, out any, decided func() bool) error {
	if len(p.Raw) == 0 {
		return errors.New("subscriptions: a remote facilitator needs the payment as received")
	}
	body, err := json.Marshal(facilitatorRequest{X402Version: p.Version, PaymentPayload: p.Raw, PaymentRequirements: wireRequirements(p.Version, req)})
	if err != nil {
		return err
	}
	// The URL is the operator's facilitator, from the configuration.
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body)) //nolint:gosec // G704: see above
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	status, err := r.do(hreq, out)
	if err == nil && !decided() {
		err = fmt.Errorf("subscriptions: facilitator %s%s: status %d without a verdict", r.base, path, status)
	}
	return err
}

// do sends hreq with the auth header and decodes a JSON answer into out.
func (r *Remote) do(hreq *http.Request, out any) (int, error) {
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", r.userAgent)
	if r.authName != "" {
		hreq.Header.Set(r.authName, r.authValue)
	}
	res, err := r.client.Do(hreq) //nolint:gosec // G704: the configured facilitator's URL
	if err != nil {
		return 0, fmt.Errorf("subscriptions: facilitator %s: %w", hreq.URL.Path, err)
	}
	defer func() { _ = res.Body.Close() }() // the answer is read whole, or refused
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxFacilitatorAnswer+1))
	if err != nil {
		return res.StatusCode, fmt.Errorf("subscriptions: facilitator %s: read answer: %w", hreq.URL.Path, err)
	}
	if len(raw) > maxFacilitatorAnswer {
		return res.StatusCode, fmt.Errorf("subscriptions: facilitator %s: answer over %d bytes", hreq.URL.Path, maxFacilitatorAnswer)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return res.StatusCode, fmt.Errorf("subscriptions: facilitator %s: status %d, content type %q, not JSON", hreq.URL.Path, res.StatusCode, mt)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return res.StatusCode, fmt.Errorf("subscriptions: facilitator %s: status %d, answer: %w", hreq.URL.Path, res.StatusCode, err)
	}
	return res.StatusCode, nil
}

// wireRequirements renders req as the PaymentRequirements of protocol
// version (1 or 2).
func wireRequirements(version int, req Requirement) any {
	var extra map[string]string
	if req.AssetName != "" {
		extra = map[string]string{"name": req.AssetName, "version": req.AssetVersion}
	}
	if version == 1 {
		return requirementsV1{
			Scheme: "exact", Network: v1Networks[req.Network], MaxAmountRequired: req.Amount, Resource: req.Resource,
			Description: req.Description, MimeType: "application/json", PayTo: req.PayTo,
			MaxTimeoutSeconds: req.MaxTimeoutSeconds, Asset: req.Asset, Extra: extra,
		}
	}
	return requirements{
		Scheme: "exact", Network: req.Network, Amount: req.Amount, Asset: req.Asset, PayTo: req.PayTo,
		MaxTimeoutSeconds: req.MaxTimeoutSeconds, Extra: extra,
	}
}
