package sdk

import (
	"io"
	"net/http"
)

// maxDrain is how much of a refused response's body is read, so that its
// connection can be reused, before the request is retried.
const maxDrain = 64 << 10

// transport authenticates requests with tokens from src and retries a
// request refused with 401 once with a new token.
type transport struct {
	src  *TokenSource
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.src.Token()
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	tok.SetAuthHeader(r)
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	t.src.Invalidate(tok)

	r = req.Clone(req.Context())
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil:
		body, err := req.GetBody()
		if err != nil {
			return resp, nil // cannot replay: return the 401
		}
		r.Body = body
	default:
		return resp, nil
	}
	tok, err = t.src.Token()
	if err != nil {
		closeBody(r)
		drain(resp)
		return nil, err
	}
	drain(resp)
	tok.SetAuthHeader(r)
	return t.base.RoundTrip(r)
}

// drain reads a little of resp's body and closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}

// closeBody closes req's body, as a RoundTripper must even when it fails.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
