package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/replay"
	"github.com/tollgate/tollgate/internal/reqsign"
)

// KeyLookup verifies a presented API key; *credentials.Service is one.
type KeyLookup interface {
	Lookup(ctx context.Context, presented string) (credentials.Key, error)
}

// APIKeyMethod authenticates requests by their X-API-KEY header, and checks
// the request signature of keys that have a signing secret.
type APIKeyMethod struct {
	Keys KeyLookup
	// Signatures checks signed requests; nil refuses every signed request
	// and every key that requires a signature.
	Signatures *SignatureChecker
}

var (
	errTwoKeys = apierror.New(http.StatusUnauthorized, apierror.InvalidCredentials, "more than one X-API-KEY header")
	errNoSig   = apierror.New(http.StatusUnauthorized, apierror.MissingSignature,
		"this API key requires signed requests: send X-Timestamp and X-Signature (or an RFC 9421 Signature)")
)

// Authenticate implements authn.Authenticator.
func (m APIKeyMethod) Authenticate(r *http.Request) (*authn.Principal, error) {
	vs := r.Header.Values(HeaderAPIKey)
	switch len(vs) {
	case 0:
		return nil, authn.ErrAbsent
	case 1:
	default:
		return nil, errTwoKeys
	}
	k, err := m.Keys.Lookup(r.Context(), vs[0])
	if err != nil {
		return nil, err
	}
	if !signed(r.Header) {
		if k.SignatureRequired {
			return nil, errNoSig
		}
		return k.Principal, nil
	}
	if m.Signatures == nil {
		return nil, sigError(apierror.ReasonSignatureMalformed, "request signatures are not accepted here")
	}
	if err := m.Signatures.Check(r, k); err != nil {
		return nil, err
	}
	return k.Principal, nil
}

// Challenge implements authn.Authenticator.
func (APIKeyMethod) Challenge() string { return `APIKey realm="tollgate", header="X-API-KEY"` }

func signed(h http.Header) bool {
	return len(h.Values(reqsign.HeaderSignature)) > 0 || len(h.Values(reqsign.HeaderSignatureInput)) > 0
}

var errReplayed = sigError(apierror.ReasonSignatureReplayed, "this signature was already used")

func sigError(reason, msg string) *apierror.Error {
	return apierror.New(http.StatusUnauthorized, apierror.InvalidSignature, msg).WithReason(reason)
}

// SignatureChecker verifies HMAC-signed requests (the seed scheme and RFC
// 9421 hmac-sha256) and refuses replays: a signature is accepted once.
//
// Only a signature that verifies takes a place in the replay cache, under
// its credential, for 2×Window; a request refused after that (ban, IP
// allowlist, scope, rate limit, quota) gives its place back through the
// request's reqinfo.Info.Undo, which the gateway calls: it never reached
// the upstream, so the client may send it again. Each credential holds at
// most MaxPerCredential places; beyond that its signed requests are refused
// with 429 RATE_LIMITED, reason replay_cache_full, until its oldest place
// expires, and no other credential is affected.
type SignatureChecker struct {
	Counters counters.Store // the replay cache
	Clock    clock.Clock
	// Window is how far the signed time may be from the server's (±).
	Window time.Duration
	// MaxPerCredential bounds the live places of one credential in the
	// replay cache: the signed requests it may make within 2×Window.
	// Zero or less means replay.DefaultMaxPerOwner.
	MaxPerCredential int
	// TrustedPeer tells whether a peer's X-Forwarded-Proto is believed, for
	// the @scheme of RFC 9421 signatures.
	TrustedPeer func(remoteAddr string) bool
}

// Check verifies r's signature with k's signing secret. It reads the body
// (within the limit the server already put on it), and puts it back for the
// upstream, unchanged.
func (c *SignatureChecker) Check(r *http.Request, k credentials.Key) error {
	if len(k.SigningSecret) == 0 {
		return sigError(apierror.ReasonSignatureMismatch, "this API key has no signing secret")
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		if body, err = readBody(r); err != nil {
			return err // 413 past the limit, before the rest is read or hashed
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	now := c.Clock.Now()
	var replayKey string
	if len(r.Header.Values(reqsign.HeaderSignatureInput)) > 0 {
		sig, err := reqsign.ParseHTTPSig(r.Header)
		if err != nil {
			return mapSigError(err)
		}
		if sig.KeyID() != k.Principal.CredentialID {
			return sigError(apierror.ReasonSignatureMismatch, "the signature's keyid is not this API key's ID")
		}
		if err := sig.Verify(k.SigningSecret, reqsign.NewRequestInfo(r, c.scheme(r)), body, now, c.Window); err != nil {
			return mapSigError(err)
		}
		replayKey = sig.ReplayKey()
	} else {
		h, err := reqsign.ParseSeedHeaders(r.Header)
		if err != nil {
			return mapSigError(err)
		}
		if err := reqsign.VerifySeed(k.SigningSecret, h, r.Method, r.RequestURI, body, now, c.Window); err != nil {
			return mapSigError(err)
		}
		replayKey = h.ReplayKey()
	}
	// A signature stays acceptable until its time plus the window, at most
	// 2·window after it is first seen: remember it that long. The owner is
	// the key, in the group of its organization (counters.OwnerGroup).
	owner := k.Principal.OrgID + "/" + k.Principal.CredentialID
	return replay.Claim(r, c.Counters, owner, replayKey, 2*c.Window, c.MaxPerCredential, errReplayed)
}

// readBody reads r's body whole, in one allocation when the request states
// its length (the server's body limit still applies to what is read).
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > 1<<20 {
		return io.ReadAll(r.Body)
	}
	b := make([]byte, 0, n+1) // +1: room to read EOF without growing
	for {
		if len(b) == cap(b) { // net/http stops at the stated length; another caller may not
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (c *SignatureChecker) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if c.TrustedPeer != nil && c.TrustedPeer(r.RemoteAddr) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			return p
		}
	}
	return "http"
}

func mapSigError(err error) error {
	switch {
	case errors.Is(err, reqsign.ErrOutOfWindow):
		return sigError(apierror.ReasonTimestampOutOfWindow, "the request's timestamp is outside the allowed window").Wrap(err)
	case errors.Is(err, reqsign.ErrSignatureMismatch), errors.Is(err, reqsign.ErrDigestMismatch):
		return sigError(apierror.ReasonSignatureMismatch, "the signature does not match the request").Wrap(err)
	case errors.Is(err, reqsign.ErrMissingComponent):
		return sigError(apierror.ReasonSignatureMalformed,
			"the signature must cover @method, @authority, @path, @query and, with a body, content-digest").Wrap(err)
	default:
		return sigError(apierror.ReasonSignatureMalformed, "malformed signature headers").Wrap(err)
	}
}
