package reqsign

import (
	"errors"
	"net/http"
	"testing"
)

// Digests of `{"hello": "world"}`: sha-256 from RFC 9530 Appendix B,
// sha-512 from RFC 9421 Appendix B.2; both also checked with
// printf '%s' '{"hello": "world"}' | openssl dgst -sha256 -binary | base64.
const (
	helloBody   = `{"hello": "world"}`
	helloSHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	helloSHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)

func TestContentDigest(t *testing.T) {
	if got := ContentDigest([]byte(helloBody)); got != helloSHA256 {
		t.Errorf("ContentDigest = %s, want %s", got, helloSHA256)
	}
	const emptySHA256 = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:" // SHA-256 of nothing
	if got := ContentDigest(nil); got != emptySHA256 {
		t.Errorf("ContentDigest(nil) = %s", got)
	}
}

func TestVerifyContentDigest(t *testing.T) {
	body := []byte(helloBody)
	cases := []struct {
		name   string
		values []string
		body   []byte
		want   error
	}{
		{"sha-256", []string{helloSHA256}, body, nil},
		{"sha-512", []string{helloSHA512}, body, nil},
		{"both", []string{helloSHA512 + ", " + helloSHA256}, body, nil},
		{"two lines", []string{helloSHA256, helloSHA512}, body, nil},
		{"unknown ignored", []string{"md5=:sQqNsWTgdUEFt6mb5y4/5Q==:, " + helloSHA256}, body, nil},
		{"with parameter", []string{helloSHA256 + ";x=1"}, body, nil},
		{"absent", nil, body, ErrMissingComponent},
		{"other body", []string{helloSHA256}, []byte(`{"hello":"world"}`), ErrDigestMismatch},
		{"one wrong", []string{helloSHA256 + ", sha-512=:" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:"}, body, ErrDigestMismatch},
		{"only unknown", []string{"md5=:sQqNsWTgdUEFt6mb5y4/5Q==:"}, body, ErrMalformed},
		{"empty", []string{""}, body, ErrMalformed},
		{"not a dictionary", []string{"sha-256"}, body, ErrMalformed},
		{"garbage", []string{"sha-256=:abc"}, body, ErrMalformed},
		{"uppercase key", []string{"SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"}, body, ErrMalformed},
		{"string", []string{`sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="`}, body, ErrMalformed},
		{"inner list", []string{`sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)`}, body, ErrMalformed},
		{"short", []string{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9D:"}, body, ErrMalformed},
		{"sha-256 length under sha-512", []string{"sha-512=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"}, body, ErrMalformed},
	}
	for _, c := range cases {
		err := VerifyContentDigest(http.Header{HeaderContentDigest: c.values}, c.body)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: VerifyContentDigest = %v, want %v", c.name, err, c.want)
		}
	}
}
