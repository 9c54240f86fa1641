// Package sdk is a client for APIs behind a Tollgate gateway.
//
// An app authenticates with the OAuth 2.0 client credentials grant (RFC 6749
// §4.4): it exchanges its client ID and secret at the gateway's token
// endpoint, POST /oauth/token, for a Bearer access token, which it then
// presents on every API call. [ClientCredentials] describes the app;
// [ClientCredentials.Client] returns an [http.Client] that does all of this:
//
//   - it caches the token and reuses it while it is valid;
//   - it fetches a new token before the cached one expires, by default one
//     hour before (see [ClientCredentials.RefreshBefore]);
//   - when the gateway answers 401 Unauthorized, for example because the
//     token was revoked, it fetches a new token and retries the request once.
//
// Use [ClientCredentials.TokenSource] to get tokens without the HTTP client,
// for example for a WebSocket handshake.
//
// An API key with a signing secret signs its requests instead: [Signer] is
// an [http.RoundTripper] that adds X-API-KEY and an HMAC-SHA256 signature,
// in the seed scheme (X-Timestamp, X-Signature) or as an RFC 9421 HTTP
// Message Signature.
//
// A wallet signs in and pays with [EthereumSIWXToken], [SolanaSIWXToken],
// [SIWXChallenge] (x402's SIGN-IN-WITH-X) and [PayForPlan].
//
// What Tollgate signs, the SDK verifies: [VerifyWebhook] and
// [WebhookHandler] check a webhook delivery (X-Webhook-Signature and the
// Standard Webhooks headers); [ResponseVerifier] and [SignedTransport]
// check signed responses (X-Signature) against the keys the gateway
// publishes.
package sdk

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// DefaultRefreshBefore is how long before its expiry a cached token is
// replaced when [ClientCredentials.RefreshBefore] is zero.
const DefaultRefreshBefore = time.Hour

// ClientCredentials configures access with an app's client ID and secret.
// Zero fields take the defaults documented with them.
type ClientCredentials struct {
	// TokenURL is the gateway's token endpoint,
	// e.g. https://api.example.com/oauth/token.
	TokenURL string

	// ClientID and ClientSecret identify the app.
	ClientID     string
	ClientSecret string

	// Scopes are the scopes requested, sent space-separated as the scope
	// parameter. None means a token without scopes.
	Scopes []string

	// RefreshBefore is how long before a cached token expires a new one is
	// fetched. Zero means DefaultRefreshBefore; a negative value means a
	// token is replaced only once it has expired. The margin is never more
	// than half the token's lifetime, so that a short-lived token is not
	// fetched again on every call.
	RefreshBefore time.Duration

	// AuthStyle is how the client authenticates at the token endpoint.
	// Zero (oauth2.AuthStyleAutoDetect) means oauth2.AuthStyleInHeader,
	// HTTP Basic (client_secret_basic); oauth2.AuthStyleInParams sends the
	// ID and secret in the form (client_secret_post).
	AuthStyle oauth2.AuthStyle

	// HTTPClient fetches tokens, and its Transport, Jar, CheckRedirect and
	// Timeout are those of the client that Client returns. Nil means
	// http.DefaultClient.
	HTTPClient *http.Client

	// Now tells the current time; token expiry is measured by it. Nil
	// means time.Now. It is there for tests.
	Now func() time.Time
}

// TokenSource returns a source of access tokens for c. ctx is used for every
// token fetch, for the source's whole life, not for a single call; it should
// not be cancelled while the source is in use.
func (c ClientCredentials) TokenSource(ctx context.Context) *TokenSource {
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	style := c.AuthStyle
	if style == oauth2.AuthStyleAutoDetect {
		style = oauth2.AuthStyleInHeader
	}
	before := c.RefreshBefore
	switch {
	case before == 0:
		before = DefaultRefreshBefore
	case before < 0:
		before = 0
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &TokenSource{
		ctx: context.WithValue(ctx, oauth2.HTTPClient, hc),
		conf: &clientcredentials.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret,
			TokenURL:     c.TokenURL,
			Scopes:       append([]string(nil), c.Scopes...),
			AuthStyle:    style,
		},
		refreshBefore: before,
		now:           now,
	}
}

// Client returns an HTTP client that authenticates its requests with tokens
// from c.TokenSource(ctx); see [ClientCredentials.TokenSource] for ctx.
//
// It sets the Authorization header to the Bearer token, replacing any. When
// a response is 401 Unauthorized, it drops the token and, if the request's
// body can be sent again (no body, http.NoBody, or GetBody set, as
// http.NewRequest does for in-memory bodies), closes that response, fetches
// a new token and sends the request once more, whatever its method. The
// response to the retry is returned as is, even a second 401. A request
// whose body cannot be sent again gets its 401; the next request uses a new
// token.
//
// The token is sent with every request, to whatever host: use the client
// for the gateway only.
func (c ClientCredentials) Client(ctx context.Context) *http.Client {
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &transport{src: c.TokenSource(ctx), base: base}
	return &hc
}
