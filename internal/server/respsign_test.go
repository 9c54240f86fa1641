package server

import (
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/respsign"
)

// signingKeys fetches the published response signing keys.
func signingKeys(t *testing.T, base string) respsign.Document {
	t.Helper()
	r := do(t, "GET", base+respsign.WellKnownPath, nil)
	var d respsign.Document
	if r.Status != 200 || json.Unmarshal(r.Body, &d) != nil || len(d.Keys) == 0 {
		t.Fatalf("%s: %d %s", respsign.WellKnownPath, r.Status, r.Body)
	}
	return d
}

// verifySigned checks that r carries a valid response signature.
func verifySigned(t *testing.T, d respsign.Document, r response) {
	t.Helper()
	pub, err := d.PublicKey(r.Header.Get(respsign.HeaderKeyID))
	if err != nil {
		t.Fatalf("key %q: %v (headers %v)", r.Header.Get(respsign.HeaderKeyID), err, r.Header)
	}
	if err := respsign.Verify(pub, r.Body, r.Header.Get(respsign.HeaderSignature)); err != nil {
		t.Fatalf("signature of %q: %v", r.Body, err)
	}
}

// TestSignedResponses: a route with sign_response has its responses signed
// (X-Signature over the exact body, X-Signature-Key-Id), its refusals too,
// even when the upstream would compress or chunk; other routes are not
// signed; the key is published.
func TestSignedResponses(t *testing.T) {
	backend := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body := `{"price":"42.00","path":"` + r.URL.Path + `"}`
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			return
		}
		_, _ = w.Write([]byte(body[:10]))
		w.(http.Flusher).Flush() // chunked, as many APIs answer
		_, _ = w.Write([]byte(body[10:]))
	})
	yaml := strings.Replace(baseYAML(t.TempDir(), backend.URL), "  - path: /v1/kyt/\n", "  - path: /v1/signed/\n    upstream: "+backend.URL+"\n    sign_response: true\n  - path: /v1/kyt/\n", 1)
	n := start(t, yaml, nil)
	token := n.account("signer@example.com", "Signed Co")
	key, _ := n.createKey(token, nil)
	d := signingKeys(t, n.base)
	if d.CurrentKeyID == "" || !strings.Contains(d.Keys[0].PEM, "BEGIN PUBLIC KEY") || d.Keys[0].JWK.Crv != "secp256k1" {
		t.Fatalf("document %+v", d)
	}

	r := do(t, "GET", n.base+"/v1/signed/quote", nil, "X-API-KEY", key, "Accept-Encoding", "gzip")
	if r.Status != 200 || string(r.Body) != `{"price":"42.00","path":"/v1/signed/quote"}` || r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("signed route: %d %q %v", r.Status, r.Body, r.Header)
	}
	verifySigned(t, d, r)

	r = do(t, "GET", n.base+"/v1/signed/quote", nil, "X-API-KEY", "tg_live_wrong")
	if r.Status != 401 {
		t.Fatalf("bad key: %d", r.Status)
	}
	verifySigned(t, d, r) // the gateway's refusal is signed too

	r = do(t, "GET", n.base+"/v1/other", nil, "X-API-KEY", key)
	if r.Status != 200 || r.Header.Get(respsign.HeaderSignature) != "" {
		t.Fatalf("unsigned route: %d %v", r.Status, r.Header)
	}
	pem := do(t, "GET", n.base+respsign.WellKnownPath, nil, "Accept", "application/x-pem-file")
	if pem.Status != 200 || !strings.HasPrefix(string(pem.Body), "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("PEM: %d %s", pem.Status, pem.Body)
	}
}

// TestSignAllResponses: response_signing.all signs every response of the
// public listener, the control plane's included.
func TestSignAllResponses(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), backend.URL)+"response_signing: {all: true}\n", nil)
	d := signingKeys(t, n.base)
	for _, path := range []string{"/healthz", "/status/x", "/v1/x", "/api/v1/me", "/nowhere"} {
		r := do(t, "GET", n.base+path, nil)
		verifySigned(t, d, r)
	}
}
