package sdk

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// retryAfterFailure is how long a TokenSource keeps serving a still valid
// token after a failed early refresh before it tries again.
const retryAfterFailure = time.Minute

// A TokenSource fetches access tokens from the token endpoint and caches
// them. It implements [oauth2.TokenSource] and is safe for concurrent use.
//
// The tokens it returns are shared: callers must not modify them. Their
// Expiry is measured by [ClientCredentials.Now].
type TokenSource struct {
	ctx           context.Context
	conf          *clientcredentials.Config
	refreshBefore time.Duration
	now           func() time.Time

	mu        sync.Mutex
	tok       *oauth2.Token // cached, or nil
	refreshAt time.Time     // when tok is to be replaced; zero: never
	call      *fetchCall    // the fetch in flight, or nil
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// fetchCall is a token fetch that concurrent callers of Token share.
type fetchCall struct {
	done chan struct{} // closed when tok and err are set
	tok  *oauth2.Token
	err  error
}

// Token returns the cached token, or fetches a new one if there is none or
// the cached one is within its refresh margin (see
// [ClientCredentials.RefreshBefore]). Concurrent callers share one fetch;
// while it is under way, those who can be served the cached token, because
// it has not expired yet, do not wait for it.
//
// If an early refresh fails, Token returns the cached token, which is still
// valid, and tries again no sooner than a minute later. Once the token has
// expired, a failed fetch is returned as an error, an [*oauth2.RetrieveError]
// if the token endpoint refused.
func (ts *TokenSource) Token() (*oauth2.Token, error) {
	ts.mu.Lock()
	now := ts.now()
	if ts.tok != nil && (ts.refreshAt.IsZero() || now.Before(ts.refreshAt)) {
		defer ts.mu.Unlock()
		return ts.tok, nil
	}
	c := ts.call
	if c != nil {
		if ts.usable(now) {
			defer ts.mu.Unlock()
			return ts.tok, nil
		}
		ts.mu.Unlock()
		<-c.done
		return c.tok, c.err
	}
	c = &fetchCall{done: make(chan struct{})}
	ts.call = c
	ts.mu.Unlock()
	ts.fetch(c)
	return c.tok, c.err
}

// Invalidate drops tok from the cache if it is still the cached token, so
// that the next call of Token fetches a new one. Call it when tok has been
// refused, for example with 401 Unauthorized. A token that has already been
// replaced is ignored, so that concurrent callers refused with the same
// token cause a single fetch.
func (ts *TokenSource) Invalidate(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && ts.tok.AccessToken == tok.AccessToken {
		ts.tok = nil
		ts.refreshAt = time.Time{}
	}
}

// usable reports whether the cached token has not expired at now.
// ts.mu must be held.
func (ts *TokenSource) usable(now time.Time) bool {
	return ts.tok != nil && (ts.tok.Expiry.IsZero() || now.Before(ts.tok.Expiry))
}

// fetch gets a new token for c, caches it and completes c.
func (ts *TokenSource) fetch(c *fetchCall) {
	defer close(c.done)
	fetchedAt := ts.now()
	tok, err := ts.conf.Token(ts.ctx)
	received := time.Now()

	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.call = nil
	if err != nil {
		now := ts.now()
		if !ts.usable(now) {
			c.err = err
			return
		}
		c.tok = ts.tok
		ts.refreshAt = now.Add(retryAfterFailure)
		if !ts.tok.Expiry.IsZero() && ts.tok.Expiry.Before(ts.refreshAt) {
			ts.refreshAt = ts.tok.Expiry
		}
		return
	}
	// The oauth2 package sets Expiry by time.Now when the response
	// arrives; restate it by ts.now from before the request was sent,
	// which errs on the early side.
	ts.refreshAt = time.Time{}
	if !tok.Expiry.IsZero() {
		lifetime := tok.Expiry.Sub(received)
		tok.Expiry = fetchedAt.Add(lifetime)
		ts.refreshAt = tok.Expiry.Add(-max(0, min(ts.refreshBefore, lifetime/2)))
	}
	ts.tok = tok
	c.tok = tok
}
