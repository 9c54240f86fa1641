package sdk

// This file is the receiving side of Tollgate's two signatures: webhook
// deliveries (HMAC-SHA256 under a webhook secret, package whsig) and HTTP
// responses (ECDSA secp256k1 over the body, package respsign).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/whsig"
)

// Webhook signature header names, in the canonical form http.Header uses.
// Header names are case-insensitive on the wire.
const (
	// HeaderWebhookSignature is X-Webhook-Signature, the seed's header:
	// "t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>[,v1=…]".
	HeaderWebhookSignature = whsig.HeaderSignature
	// HeaderWebhookID, HeaderWebhookTimestamp and
	// HeaderWebhookStandardSignature are the Standard Webhooks headers
	// webhook-id, webhook-timestamp and webhook-signature
	// ("v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)> …").
	HeaderWebhookID                = whsig.HeaderID
	HeaderWebhookTimestamp         = whsig.HeaderTimestamp
	HeaderWebhookStandardSignature = whsig.HeaderStandardSignature
)

const (
	// DefaultWebhookTolerance is how far, either way, a webhook's signed
	// timestamp may be from the receiver's clock when no tolerance (zero or
	// less) is given: 5 minutes.
	DefaultWebhookTolerance = whsig.DefaultTolerance

	// DefaultMaxWebhookBody is the largest body, in bytes, that a
	// [WebhookReceiver] with a zero MaxBody reads: 1 MiB.
	DefaultMaxWebhookBody = 1 << 20
)

// Errors of webhook verification. Test them with errors.Is: the errors
// returned wrap them and say more. ErrWebhookMalformedSignature and
// ErrWebhookTimestamp are kinds of ErrWebhookInvalidSignature (errors.Is
// reports both), so a receiver that answers with the seed's two codes tests
// ErrWebhookMissingSignature (MISSING_SIGNATURE) and
// ErrWebhookInvalidSignature (INVALID_SIGNATURE) only.
var (
	// ErrWebhookMissingSignature: the delivery carries neither
	// X-Webhook-Signature nor webhook-signature, or only empty ones.
	ErrWebhookMissingSignature = whsig.ErrMissingSignature
	// ErrWebhookInvalidSignature: no signature is the HMAC of the delivery
	// under the secret, or the headers are malformed or too old.
	ErrWebhookInvalidSignature = whsig.ErrInvalidSignature
	// ErrWebhookMalformedSignature: a signature header is not of the
	// documented form. It matches ErrWebhookInvalidSignature.
	ErrWebhookMalformedSignature = whsig.ErrMalformedSignature
	// ErrWebhookTimestamp: the signed timestamp is further from now than the
	// tolerance. It matches ErrWebhookInvalidSignature.
	ErrWebhookTimestamp = whsig.ErrTimestamp
	// ErrInvalidWebhookSecret: the secret given is not "whsec_" followed by
	// the standard padded base64 of 24 to 64 bytes. It is the caller's
	// mistake and matches none of the errors above; the message never
	// quotes the secret.
	ErrInvalidWebhookSecret = whsig.ErrInvalidSecret
)

// VerifyWebhook checks the signature of a webhook delivery with
// DefaultWebhookTolerance; see [VerifyWebhookTolerance].
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	return VerifyWebhookTolerance(secret, h, body, now, 0)
}

// VerifyWebhookTolerance checks the signature of a webhook delivery: its
// headers h and its raw body, byte for byte as received (before any JSON
// parsing), under secret, the endpoint's webhook secret ("whsec_…"), at
// time now. h is looked up as http.Header does, by canonical names: pass
// r.Header as net/http gives it, or build h with Set or Add.
//
// If h has a non-empty X-Webhook-Signature, that header is checked; if it
// has a non-empty webhook-signature, the Standard Webhooks headers
// (webhook-id, webhook-timestamp, webhook-signature) are; at least one must
// be there, and each one there must verify. Tollgate sends both, so both
// are checked, and webhook-id, which X-Webhook-Signature does not cover and
// on which receivers de-duplicate, is authenticated. A header verifies if
// its timestamp is at most tolerance away from now (DefaultWebhookTolerance
// if tolerance ≤ 0) and one of its signatures (there is one per secret
// during a rotation) is that of secret; each is compared in constant time.
//
// It returns nil, or an error for which errors.Is reports
// ErrWebhookMissingSignature or ErrWebhookInvalidSignature (and, when that
// is the cause, ErrWebhookMalformedSignature or ErrWebhookTimestamp), or,
// for a secret that is not a webhook secret, ErrInvalidWebhookSecret.
//
// A valid signature stays valid for the tolerance: a captured delivery
// verifies again within that window. Receivers that must not process a
// message twice remember the webhook-id values they have processed (for
// twice the tolerance at least) and skip those they have seen: Tollgate
// delivers at least once, and retries a delivery, under the same
// webhook-id. VerifyWebhookTolerance keeps no state and is safe for
// concurrent use.
func VerifyWebhookTolerance(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := whsig.ParseSecret(secret)
	if err != nil {
		return err
	}
	return verifyWebhook(key, h, body, now, tolerance)
}

// verifyWebhook is VerifyWebhookTolerance with the decoded key.
func verifyWebhook(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	seed, std := hasValue(h, whsig.HeaderSignature), hasValue(h, whsig.HeaderStandardSignature)
	if !seed && !std {
		return fmt.Errorf("%w: no %s or %s header", ErrWebhookMissingSignature,
			whsig.HeaderSignature, whsig.HeaderStandardSignature)
	}
	if seed {
		if err := whsig.Verify(h, body, key, now, tolerance); err != nil {
			return err
		}
	}
	if std {
		return whsig.VerifyStandard(h, body, key, now, tolerance)
	}
	return nil
}

// hasValue reports whether h has a non-empty value for name.
func hasValue(h http.Header, name string) bool {
	return slices.ContainsFunc(h.Values(name), func(v string) bool { return v != "" })
}

// WebhookFunc handles a webhook delivery whose signature has been verified.
// body is the raw body as received; r.Body reads the same bytes again.
type WebhookFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// WebhookHandler returns an http.Handler that verifies each delivery with
// secret before passing it to next; it is
// WebhookReceiver{Secret: secret}.Handler(next), which says more.
func WebhookHandler(secret string, next WebhookFunc) http.Handler {
	return WebhookReceiver{Secret: secret}.Handler(next)
}

// WebhookReceiver configures a handler of webhook deliveries. Zero fields
// take the defaults documented with them.
type WebhookReceiver struct {
	// Secret is the endpoint's webhook secret, "whsec_…". Keep it out of
	// the source: read it from the environment or a secret manager.
	Secret string

	// Tolerance is how far, either way, a delivery's signed timestamp may
	// be from Now. Zero or less means DefaultWebhookTolerance.
	Tolerance time.Duration

	// MaxBody is the largest body read, in bytes; a larger one is refused
	// with 413 PAYLOAD_TOO_LARGE. Zero or less means
	// DefaultMaxWebhookBody.
	MaxBody int64

	// Now tells the current time. Nil means time.Now. It is there for
	// tests.
	Now func() time.Time
}

// Handler returns an http.Handler that reads the raw body of each request,
// at most MaxBody bytes, verifies it as [VerifyWebhookTolerance] does and,
// if the signature is valid, calls next with the body. Otherwise it answers
// with Tollgate's JSON error body, {"error":{"code":…,"message":…}}, and
// does not call next:
//
//   - 401 MISSING_SIGNATURE: no signature header;
//   - 401 INVALID_SIGNATURE: no valid signature, with "reason"
//     "timestamp_out_of_window", "malformed" or "mismatch";
//   - 413 PAYLOAD_TOO_LARGE: the body exceeds MaxBody;
//   - 400 BAD_REQUEST: the body could not be read.
//
// The handler does not de-duplicate. Delivery is at least once: Tollgate
// retries an attempt that got no 2xx answer in time, for about a day, and
// the same event may come again after a crash or a redelivery, always with
// the same webhook-id; a captured delivery also verifies again within
// Tolerance. So next should skip a webhook-id it has already processed, and
// answer 2xx quickly, processing later, since a slow answer counts as a
// failure and is retried.
//
// Handler copies rc: later changes to rc do not affect the handler. It
// panics if rc.Secret is not a valid webhook secret or next is nil, so that
// a misconfigured receiver fails at start-up; the panic never shows the
// secret. The handler is safe for concurrent use.
func (rc WebhookReceiver) Handler(next WebhookFunc) http.Handler {
	key, err := whsig.ParseSecret(rc.Secret)
	if err != nil {
		panic("sdk: WebhookReceiver: " + err.Error())
	}
	if next == nil {
		panic("sdk: WebhookReceiver: nil WebhookFunc")
	}
	h := &webhookHandler{key: key, tolerance: rc.Tolerance, maxBody: rc.MaxBody, now: rc.Now, next: next}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxWebhookBody
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// webhookHandler is the handler of WebhookReceiver.Handler.
type webhookHandler struct {
	key       []byte
	tolerance time.Duration
	maxBody   int64
	now       func() time.Time
	next      WebhookFunc
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		apierror.Write(w, r, err)
	}
}

func (h *webhookHandler) serve(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return err // 413, by apierror.From
		}
		return apierror.New(http.StatusBadRequest, apierror.BadRequest, "cannot read the request body").Wrap(err)
	}
	if err := verifyWebhook(h.key, r.Header, body, h.now(), h.tolerance); err != nil {
		return webhookError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.next(w, r, body)
	return nil
}

// webhookError maps a verification error to the seed's codes.
func webhookError(err error) error {
	invalid := apierror.New(http.StatusUnauthorized, apierror.InvalidSignature, "webhook signature verification failed").Wrap(err)
	switch {
	case errors.Is(err, ErrWebhookMissingSignature):
		return apierror.New(http.StatusUnauthorized, apierror.MissingSignature, "missing webhook signature header").Wrap(err)
	case errors.Is(err, ErrWebhookTimestamp):
		return invalid.WithReason(apierror.ReasonTimestampOutOfWindow)
	case errors.Is(err, ErrWebhookMalformedSignature):
		return invalid.WithReason(apierror.ReasonSignatureMalformed)
	case errors.Is(err, ErrWebhookInvalidSignature):
		return invalid.WithReason(apierror.ReasonSignatureMismatch)
	default:
		return err // 500, by apierror.From
	}
}

// Response signature header names.
const (
	// HeaderResponseSignature is X-Signature: the standard base64 of the
	// DER-encoded ECDSA secp256k1 signature of SHA-256(body).
	HeaderResponseSignature = respsign.HeaderSignature
	// HeaderResponseKeyID is X-Signature-Key-Id: the ID of the key that
	// signed, as published.
	HeaderResponseKeyID = respsign.HeaderKeyID
	// HeaderResponseStatus is X-Signature-Status, sent instead of
	// X-Signature on a response the gateway did not sign:
	// `unsigned; reason="too-large"`.
	HeaderResponseStatus = respsign.HeaderStatus
	// ResponseKeysPath is where the gateway publishes its response signing
	// keys, relative to its base URL.
	ResponseKeysPath = respsign.WellKnownPath
)

const (
	// DefaultKeyRefetchInterval is the least time between two fetches of
	// the published keys that a [ResponseVerifier] makes on meeting an
	// unknown key ID, unless WithKeyRefetchInterval says otherwise.
	DefaultKeyRefetchInterval = time.Minute

	// DefaultMaxSignedBody is the largest response body, in bytes, that a
	// [SignedTransport] with a zero MaxBody reads: 16 MiB. The gateway
	// signs bodies of up to 1 MiB unless configured otherwise, and sends
	// larger ones unsigned.
	DefaultMaxSignedBody = 16 << 20

	// maxKeysDocument bounds the publication read, in bytes.
	maxKeysDocument = 1 << 20
	// maxStatusInError bounds how much of X-Signature-Status an error quotes.
	maxStatusInError = 200
)

// Errors of response verification. Test them with errors.Is.
var (
	// ErrResponseUnsigned: the response has no X-Signature. The error is
	// an *UnsignedResponseError, which says why if the gateway did.
	ErrResponseUnsigned = errors.New("sdk: response is not signed")
	// ErrInvalidResponseSignature: X-Signature is malformed or is not the
	// signature of the body by the key it names.
	ErrInvalidResponseSignature = respsign.ErrInvalidSignature
	// ErrUnknownResponseKey: X-Signature-Key-Id names a key that the
	// gateway does not publish, even after fetching the keys again. It
	// matches ErrInvalidResponseSignature too.
	ErrUnknownResponseKey = errors.New("sdk: unknown response signing key")
	// ErrInvalidResponseKey: a public key is not a secp256k1 key in the
	// expected encoding (a PEM "PUBLIC KEY" block, as published).
	ErrInvalidResponseKey = respsign.ErrInvalidKey
)

// UnsignedResponseError is the error for a response without X-Signature.
// errors.Is(err, ErrResponseUnsigned) reports true for it.
type UnsignedResponseError struct {
	// Status is the response's X-Signature-Status, "" if it had none: a
	// response that did not come through a signing gateway, or whose
	// headers were stripped on the way.
	Status string
	// Reason is the reason parameter of Status, as the gateway documents
	// it: "too-large", "streamed", "trailers", "upgrade",
	// "length-mismatch" or "no-key"; "" if Status has none.
	Reason string
}

func (e *UnsignedResponseError) Error() string {
	switch {
	case e.Status == "":
		return ErrResponseUnsigned.Error() + ": no " + HeaderResponseSignature + " header"
	case e.Reason != "":
		return ErrResponseUnsigned.Error() + ": " + HeaderResponseStatus + ": unsigned; reason=\"" + e.Reason + "\""
	default:
		s := e.Status
		if len(s) > maxStatusInError {
			s = s[:maxStatusInError]
		}
		return fmt.Sprintf("%s: %s: %q", ErrResponseUnsigned.Error(), HeaderResponseStatus, s)
	}
}

// Is reports whether target is ErrResponseUnsigned.
func (e *UnsignedResponseError) Is(target error) bool { return target == ErrResponseUnsigned }

// unsignedError returns the error for a response with headers h and no
// signature.
func unsignedError(h http.Header) *UnsignedResponseError {
	st := h.Get(HeaderResponseStatus)
	return &UnsignedResponseError{Status: st, Reason: statusReason(st)}
}

// statusReason returns the reason parameter of an X-Signature-Status value,
// `unsigned; reason="too-large"`, if it is 1 to 32 lowercase letters and
// '-', quoted or not, and "" otherwise.
func statusReason(st string) string {
	for param := range strings.SplitSeq(st, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
		if !ok || k != "reason" {
			continue
		}
		if q, quoted := strings.CutPrefix(v, `"`); quoted {
			if v, ok = strings.CutSuffix(q, `"`); !ok {
				return ""
			}
		}
		if v == "" || len(v) > 32 {
			return ""
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 'a' || c > 'z') && c != '-' {
				return ""
			}
		}
		return v
	}
	return ""
}

// VerifyResponseSignature checks that signature, the value of a response's
// X-Signature header, is the signature of body, the response body byte for
// byte as received, by the public key pemKey: a PEM "PUBLIC KEY" block
// holding a secp256k1 key, as the gateway publishes at ResponseKeysPath
// (GET it with Accept: application/x-pem-file for the signing key alone).
//
// It returns nil, or an error for which errors.Is reports
// ErrInvalidResponseKey or ErrInvalidResponseSignature. Like OpenSSL, it
// accepts a valid signature whose s is above half the group order, although
// the gateway never makes one.
//
// A key given this way does not follow rotations: after the gateway rotates
// its key, responses are signed by a key that pemKey is not. Prefer a
// [ResponseVerifier], which fetches the published keys.
func VerifyResponseSignature(pemKey, body []byte, signature string) error {
	pub, err := respsign.ParsePublicKeyPEM(pemKey)
	if err != nil {
		return err
	}
	return respsign.Verify(pub, body, signature)
}

// ResponseVerifier checks the signatures of the gateway's responses with the
// keys the gateway publishes at ResponseKeysPath. It holds them in memory,
// and fetches them again, at most once every refetch interval
// (DefaultKeyRefetchInterval), when a response names a key it does not hold,
// as it does after the gateway rotates its key. It is safe for concurrent
// use; verifying with a key it holds takes no lock.
//
// The keys are trusted as fetched: give an https base URL, so that they
// cannot be substituted on the way.
type ResponseVerifier struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefetch time.Duration

	keys atomic.Pointer[responseKeys]

	fetchMu   sync.Mutex // serializes fetches; guards lastFetch
	lastFetch time.Time
}

// responseKeys is a fetched publication; it is never modified once stored.
type responseKeys struct {
	current string // the key that signs now, "" if none
	byID    map[string]*secp256k1.PublicKey
}

// ResponseVerifierOption configures a [ResponseVerifier].
type ResponseVerifierOption func(*ResponseVerifier)

// WithKeyRefetchInterval sets the least time between two fetches of the
// keys made on meeting an unknown key ID (DefaultKeyRefetchInterval by
// default). Zero or less means no limit: every unknown key ID fetches the
// keys, which lets anyone who can make responses reach the verifier make it
// fetch at will.
func WithKeyRefetchInterval(d time.Duration) ResponseVerifierOption {
	return func(v *ResponseVerifier) { v.minRefetch = max(d, 0) }
}

// WithVerifierClock sets what tells the current time, by which the refetch
// interval is measured (time.Now by default). It is there for tests.
func WithVerifierClock(now func() time.Time) ResponseVerifierOption {
	return func(v *ResponseVerifier) {
		if now != nil {
			v.now = now
		}
	}
}

// NewResponseVerifier fetches the keys that the gateway at baseURL (its
// scheme, host and any path prefix, e.g. https://api.example.com) publishes
// at ResponseKeysPath and returns a verifier that uses them. client makes
// the fetches (nil means http.DefaultClient); ctx bounds this first fetch
// only. It fails if the keys cannot be fetched or a published key does not
// parse.
func NewResponseVerifier(ctx context.Context, baseURL string, client *http.Client, opts ...ResponseVerifierOption) (*ResponseVerifier, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("sdk: base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sdk: base URL %q: want an absolute https URL", baseURL)
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	u = u.JoinPath(ResponseKeysPath)
	if client == nil {
		client = http.DefaultClient
	}
	v := &ResponseVerifier{url: u.String(), client: client, now: time.Now, minRefetch: DefaultKeyRefetchInterval}
	for _, o := range opts {
		o(v)
	}
	if err := v.Refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// KeysURL returns the URL the keys are fetched from.
func (v *ResponseVerifier) KeysURL() string { return v.url }

// Refresh fetches the published keys now, whatever the refetch interval, and
// replaces those held if it succeeds; on error the verifier keeps them. Call
// it now and then (the gateway lets clients cache the keys for 5 minutes)
// so that keys the gateway no longer publishes are forgotten.
func (v *ResponseVerifier) Refresh(ctx context.Context) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.fetchLocked(ctx)
}

// fetchLocked fetches the keys; v.fetchMu must be held.
func (v *ResponseVerifier) fetchLocked(ctx context.Context) error {
	v.lastFetch = v.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return fmt.Errorf("sdk: fetch response signing keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("sdk: fetch response signing keys: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sdk: fetch response signing keys from %s: %s", v.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysDocument+1))
	if err != nil {
		return fmt.Errorf("sdk: fetch response signing keys: %w", err)
	}
	if len(data) > maxKeysDocument {
		return fmt.Errorf("sdk: response signing keys at %s: more than %d bytes", v.url, maxKeysDocument)
	}
	var doc respsign.Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("sdk: response signing keys at %s: %w", v.url, err)
	}
	if doc.Algorithm != respsign.SignatureAlgorithm {
		return fmt.Errorf("sdk: response signing keys at %s: algorithm %q, want %q",
			v.url, doc.Algorithm, respsign.SignatureAlgorithm)
	}
	ks := &responseKeys{current: doc.CurrentKeyID, byID: make(map[string]*secp256k1.PublicKey, len(doc.Keys))}
	for _, k := range doc.Keys {
		pub, err := respsign.ParsePublicKeyPEM([]byte(k.PEM))
		if err != nil {
			return fmt.Errorf("sdk: response signing key %q at %s: %w", k.KID, v.url, err)
		}
		ks.byID[k.KID] = pub
	}
	v.keys.Store(ks)
	return nil
}

// KeyIDs returns the IDs of the keys held, sorted, and that of the key that
// signed new responses when they were fetched ("" if none did).
func (v *ResponseVerifier) KeyIDs() (ids []string, current string) {
	ks := v.keys.Load()
	for id := range ks.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, ks.current
}

// Verify checks the signature of resp, whose body, byte for byte as
// received, is body (resp.Body is not read). It uses X-Signature and the key
// named by X-Signature-Key-Id, or the current key if that header is absent,
// fetching the keys again first if the key is unknown (see
// [ResponseVerifier]), with resp.Request's context if it has one.
//
// It returns nil or an error for which errors.Is reports:
//
//   - ErrResponseUnsigned: no X-Signature; the error is an
//     *UnsignedResponseError giving X-Signature-Status, which says why;
//   - ErrInvalidResponseSignature: the signature does not match, is
//     malformed, or is by a key the gateway does not publish, in which case
//     errors.Is reports ErrUnknownResponseKey too.
//
// A fetch that fails is reported too, wrapped with ErrUnknownResponseKey.
//
// The signature covers the body as the gateway sent it, after any
// Content-Encoding: verify before decompressing anything. Go's
// http.Transport decompresses a gzip body by itself (and sets
// resp.Uncompressed) only when it added Accept-Encoding: gzip to a request
// that had none; the body read is then not the one signed if the gateway
// sent it compressed. The gateway strips Accept-Encoding from the requests
// it forwards to upstreams on the routes it signs, so such bodies normally
// come uncompressed, and [SignedTransport] sends Accept-Encoding: identity
// to be sure; a client that reads responses some other way sets
// Accept-Encoding itself, or DisableCompression on its transport.
func (v *ResponseVerifier) Verify(resp *http.Response, body []byte) error {
	if resp == nil {
		return errors.New("sdk: Verify: nil response")
	}
	sigs := resp.Header.Values(HeaderResponseSignature)
	kids := resp.Header.Values(HeaderResponseKeyID)
	switch {
	case len(sigs) == 0 || len(sigs) == 1 && sigs[0] == "":
		return unsignedError(resp.Header)
	case len(sigs) > 1:
		return fmt.Errorf("%w: %s header repeated", ErrInvalidResponseSignature, HeaderResponseSignature)
	case len(kids) > 1:
		return fmt.Errorf("%w: %s header repeated", ErrInvalidResponseSignature, HeaderResponseKeyID)
	}
	kid := ""
	if len(kids) == 1 {
		kid = kids[0]
	}
	ctx := context.Background()
	if resp.Request != nil {
		ctx = resp.Request.Context()
	}
	err := v.VerifySignature(ctx, kid, body, sigs[0])
	if err != nil && resp.Uncompressed {
		err = fmt.Errorf("%w (the body was decompressed by the HTTP transport, but the signature covers the bytes sent: "+
			"set Accept-Encoding on the request, or DisableCompression on the transport)", err)
	}
	return err
}

// VerifySignature checks that signature, an X-Signature value, is the
// signature of body by the published key keyID, an X-Signature-Key-Id value,
// or by the current key if keyID is "". It fetches the keys again if keyID
// is unknown, as Verify does, with ctx. The errors are those of Verify.
func (v *ResponseVerifier) VerifySignature(ctx context.Context, keyID string, body []byte, signature string) error {
	pub, err := v.key(ctx, keyID)
	if err != nil {
		return err
	}
	return respsign.Verify(pub, body, signature)
}

// key returns the published key kid ("": the current one), fetching the keys
// again if it is unknown and the refetch interval has passed.
func (v *ResponseVerifier) key(ctx context.Context, kid string) (*secp256k1.PublicKey, error) {
	lookup := func() (*secp256k1.PublicKey, bool) {
		ks := v.keys.Load()
		id := kid
		if id == "" {
			id = ks.current
		}
		pub, ok := ks.byID[id]
		return pub, ok
	}
	if pub, ok := lookup(); ok {
		return pub, nil
	}
	unknown := func(detail error) error {
		name := kid
		if len(name) > 64 {
			name = name[:64] + "…"
		}
		msg := fmt.Sprintf("key %q is not published", name)
		if kid == "" {
			msg = "no " + HeaderResponseKeyID + " header and no current key"
		}
		if detail != nil {
			return fmt.Errorf("%w: %w: %s: %w", ErrInvalidResponseSignature, ErrUnknownResponseKey, msg, detail)
		}
		return fmt.Errorf("%w: %w: %s", ErrInvalidResponseSignature, ErrUnknownResponseKey, msg)
	}

	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if pub, ok := lookup(); ok { // fetched while we waited
		return pub, nil
	}
	if since := v.now().Sub(v.lastFetch); since >= 0 && since < v.minRefetch {
		return nil, unknown(nil)
	}
	if err := v.fetchLocked(ctx); err != nil {
		return nil, unknown(err)
	}
	if pub, ok := lookup(); ok {
		return pub, nil
	}
	return nil, unknown(nil)
}

// SignedTransport is an [http.RoundTripper] that lets through only responses
// whose signature Verifier verifies. It reads each response body, at most
// MaxBody bytes, verifies it and returns the response with a Body that reads
// the same bytes again; an unsigned response, one whose signature does not
// verify or one too large is closed and RoundTrip returns an error instead,
// for which errors.Is reports ErrResponseUnsigned or
// ErrInvalidResponseSignature (see [ResponseVerifier.Verify]), through the
// *url.Error of http.Client. Every response of the gateway, errors
// included, is signed unless X-Signature-Status says why not; a client that
// accepts some unsigned responses (streamed ones, say) uses
// [ResponseVerifier.Verify] itself.
//
// A request without Accept-Encoding is sent with Accept-Encoding: identity,
// so that no transport decompresses the body before it is verified; one
// that asks for an encoding itself gets the body as sent, verified, and
// decodes it itself.
//
// A SignedTransport is safe for concurrent use as long as its fields are not
// changed.
type SignedTransport struct {
	// Verifier checks the signatures. It must not be nil.
	Verifier *ResponseVerifier

	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper

	// MaxBody is the largest body read, in bytes. Zero or less means
	// DefaultMaxSignedBody.
	MaxBody int64
}

var _ http.RoundTripper = (*SignedTransport)(nil)

// RoundTrip sends req with Base and verifies the response; req is not
// modified.
func (t *SignedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Verifier == nil {
		closeBody(req)
		return nil, errors.New("sdk: SignedTransport without a Verifier")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Header.Get("Accept-Encoding") == "" {
		r := req.Clone(req.Context())
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set("Accept-Encoding", "identity")
		req = r
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxSignedBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	_ = resp.Body.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("sdk: read response body: %w", err)
	case int64(len(body)) > limit:
		return nil, fmt.Errorf("sdk: response body larger than %d bytes, not verified", limit)
	}
	if err := t.Verifier.Verify(resp, body); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.ContentLength < 0 {
		resp.ContentLength = int64(len(body))
	}
	return resp, nil
}
