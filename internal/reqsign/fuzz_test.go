package reqsign

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// FuzzParseSeedHeaders checks that ParseSeedHeaders does not panic, that
// what it accepts VerifySeed accepts too once correctly signed, and that
// changing the body of a signed request is detected.
func FuzzParseSeedHeaders(f *testing.F) {
	for _, v := range seedVectors {
		f.Add("tgk_key", v.ts, v.nonce, v.want, v.method, v.target, []byte(v.body))
	}
	f.Add("", "01", "short", "ABC", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, key, ts, nonce, sig, method, target string, body []byte) {
		h := http.Header{}
		h.Set(HeaderAPIKey, key)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		if nonce != "" {
			h.Set(HeaderNonce, nonce)
		}
		sh, err := ParseSeedHeaders(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoSignature) {
				t.Fatalf("ParseSeedHeaders error %v wraps no sentinel", err)
			}
			return
		}
		if sh.APIKey != key || sh.Timestamp != ts || sh.Nonce != nonce || sh.Signature != sig {
			t.Fatalf("ParseSeedHeaders = %+v", sh)
		}
		secret := []byte(testSecret)
		now := unix(ts)
		sh.Signature = SeedSign(secret, SeedMessage(method, target, body, sh.Timestamp, sh.Nonce))
		if err := VerifySeed(secret, sh, method, target, body, now, time.Second); err != nil {
			t.Fatalf("VerifySeed of a signed request: %v", err)
		}
		if _, err := ParseSeedHeaders(http.Header{
			HeaderAPIKey: {sh.APIKey}, HeaderTimestamp: {sh.Timestamp}, HeaderSignature: {sh.Signature},
		}); err != nil {
			t.Fatalf("ParseSeedHeaders rejects SeedSign's output: %v", err)
		}
		if err := VerifySeed(secret, sh, method, target, append(body, 'x'), now, time.Second); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("VerifySeed with a longer body: %v", err)
		}
	})
}

// FuzzParseHTTPSig checks that ParseHTTPSig and Verify do not panic on any
// Signature-Input and Signature values and return sentinel errors.
func FuzzParseHTTPSig(f *testing.F) {
	f.Add(tgVectorInput, tgVectorSig, []byte(tgBody))
	f.Add(`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
		"sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:", []byte(nil))
	f.Add(`a=("@method" "@target-uri" "@scheme" "@request-target" "x-a");created=1;expires=2;keyid="k";nonce="abcdefgh";tag="t", b=?1`,
		`a=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:;x, b=(1 2)`, []byte("x"))
	f.Add(`a=();keyid="k";created=1;nonce="abcdefgh";d=1.5;t=tok;b=:AA==:;x=@1;s=%"d"`, "a=:AA==:", []byte{})
	f.Fuzz(func(t *testing.T, input, signature string, body []byte) {
		h := http.Header{
			HeaderSignatureInput: {input},
			HeaderHTTPSignature:  {signature},
			HeaderContentDigest:  {ContentDigest(body)},
			"X-A":                {"a"},
			"Content-Type":       {"application/json"},
		}
		s, err := ParseHTTPSig(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoSignature) {
				t.Fatalf("ParseHTTPSig error %v wraps no sentinel", err)
			}
			return
		}
		_ = s.ReplayKey()
		req := tgRequest()
		req.Header = h
		err = s.Verify([]byte(testSecret), req, body, s.Created(), time.Minute)
		for _, e := range []error{nil, ErrMalformed, ErrOutOfWindow, ErrMissingComponent, ErrDigestMismatch, ErrSignatureMismatch} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("Verify error %v wraps no sentinel", err)
	})
}

// FuzzSignHTTPSig checks the round trip SignHTTPSig, ParseHTTPSig, Verify.
func FuzzSignHTTPSig(f *testing.F) {
	f.Add("POST", "https", "api.example.com", "/v1/orders", "dry_run=1", tgKeyID, tgNonce, int64(tgCreated), []byte(tgBody))
	f.Add("GET", "http", "Example.com:80", "", "", "k", "abcdefgh", int64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, method, scheme, authority, path, query, keyID, nonce string, created int64, body []byte) {
		req := RequestInfo{
			Method: method, Scheme: scheme, Authority: authority, Path: path, RawQuery: query,
			ContentLength: int64(len(body)), Header: http.Header{},
		}
		when := time.Unix(created, 0)
		in, sig, digest, err := SignHTTPSig([]byte(testSecret), keyID, req, body, when, nonce)
		if err != nil {
			return
		}
		h := http.Header{HeaderSignatureInput: {in}, HeaderHTTPSignature: {sig}}
		if digest != "" {
			h.Set(HeaderContentDigest, digest)
		}
		s, err := ParseHTTPSig(h)
		if err != nil {
			t.Fatalf("ParseHTTPSig of %q, %q: %v", in, sig, err)
		}
		if s.KeyID() != keyID || s.Nonce() != nonce || s.Created().Unix() != created || s.Label() != Label {
			t.Fatalf("parsed %q %q %v %q", s.KeyID(), s.Nonce(), s.Created(), s.Label())
		}
		req.Header = h
		if err := s.Verify([]byte(testSecret), req, body, when, 0); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := s.Verify([]byte("other secret"), req, body, when, 0); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify with another secret: %v", err)
		}
	})
}

// FuzzContentDigest checks that VerifyContentDigest does not panic, returns
// sentinel errors, and accepts ContentDigest's output.
func FuzzContentDigest(f *testing.F) {
	f.Add(helloSHA256, []byte(helloBody))
	f.Add(helloSHA512+", "+helloSHA256, []byte(helloBody))
	f.Add("sha-256=:AA==:, md5=?0, sha-512=(1)", []byte("x"))
	f.Fuzz(func(t *testing.T, value string, body []byte) {
		err := VerifyContentDigest(http.Header{HeaderContentDigest: {value}}, body)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("VerifyContentDigest error %v wraps no sentinel", err)
		}
		if err := VerifyContentDigest(http.Header{HeaderContentDigest: {ContentDigest(body)}}, body); err != nil {
			t.Fatalf("VerifyContentDigest(ContentDigest(body)): %v", err)
		}
		if err := VerifyContentDigest(http.Header{HeaderContentDigest: {ContentDigest(body)}}, append(body, 0)); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("VerifyContentDigest of another body: %v", err)
		}
	})
}
