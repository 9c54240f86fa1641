package reqsign

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rfcRequest is the test request of RFC 9421 Appendix B.2, with the
// Signature-Input and Signature of Appendix B.2.5 added.
const rfcRequest = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n" +
	"Content-Length: 18\r\n" +
	"Signature-Input: sig-b25=(\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"\r\n" +
	"Signature: sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:\r\n" +
	"\r\n" +
	`{"hello": "world"}`

// rfcSharedSecret is the key test-shared-secret of RFC 9421 Appendix B.1.5.
const rfcSharedSecret = "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="

// rfcB25Base is the signature base of RFC 9421 Appendix B.2.5, unwrapped.
const rfcB25Base = `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
	`"@authority": example.com` + "\n" +
	`"content-type": application/json` + "\n" +
	`"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`

// readRequest parses raw as a server would and returns its RequestInfo
// (scheme https) and body.
func readRequest(t *testing.T, raw string) (*http.Request, RequestInfo, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, NewRequestInfo(r, "https"), body
}

func TestRFC9421B25(t *testing.T) {
	r, req, body := readRequest(t, rfcRequest)
	secret, err := base64.StdEncoding.DecodeString(rfcSharedSecret)
	if err != nil {
		t.Fatal(err)
	}

	s, err := parseHTTPSig(r.Header)
	if err != nil {
		t.Fatal(err)
	}
	if s.Label() != "sig-b25" || s.KeyID() != "test-shared-secret" || s.Created().Unix() != 1618884473 {
		t.Errorf("parsed label %q keyid %q created %v", s.Label(), s.KeyID(), s.Created())
	}
	base, err := s.SignatureBase(req)
	if err != nil {
		t.Fatal(err)
	}
	if string(base) != rfcB25Base {
		t.Fatalf("signature base:\n%s\nwant:\n%s", base, rfcB25Base)
	}
	if err := s.verifyMAC(secret, &req); err != nil {
		t.Fatalf("verifyMAC: %v", err)
	}
	if err := s.verifyMAC([]byte("test-shared-secret"), &req); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("verifyMAC with another secret: %v", err)
	}
	if err := VerifyContentDigest(r.Header, body); err != nil {
		t.Errorf("VerifyContentDigest of the RFC request: %v", err)
	}

	// Tollgate's policy rejects the example: no nonce, and it covers
	// neither @method, @path, @query nor content-digest.
	if _, err := ParseHTTPSig(r.Header); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseHTTPSig without nonce: %v", err)
	}
	if err := s.Verify(secret, req, body, s.Created(), time.Minute); !errors.Is(err, ErrMissingComponent) {
		t.Errorf("Verify of the RFC example: %v, want ErrMissingComponent", err)
	}
}

// tgRequest is a request Tollgate's client signs; tgVector* were computed
// outside Go by writing the signature base with printf and running
//
//	openssl dgst -sha256 -hmac tollgate-test-secret -binary base.txt | base64
const (
	tgBody         = `{"amount":1000}`
	tgKeyID        = "tgk_01234567"
	tgNonce        = "abcdefgh12345678"
	tgCreated      = 1700000000
	tgDigest       = "sha-256=:YSYS0gj7YY6ysAfSp/jXoc+1EVMjiSmPHMMzIsMJS8w=:"
	tgVectorInput  = `tollgate=("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;keyid="tgk_01234567";nonce="abcdefgh12345678";alg="hmac-sha256"`
	tgVectorSig    = "tollgate=:mPo465JMl1OuqDrtCP48WHljXsJ+QfGNolvSd8V7tbc=:"
	tgVectorGetSig = "tollgate=:hor6urPiMVBmE5bxXaTc2mUW5bMBdSRy3DZQauQbbrI=:" // GET https://api.example.com:8443/v1/orders
)

func tgRequest() RequestInfo {
	return RequestInfo{
		Method: "POST", Scheme: "https", Authority: "api.example.com",
		Path: "/v1/orders", RawQuery: "dry_run=1", ContentLength: int64(len(tgBody)),
		Header: http.Header{"Content-Type": {"application/json"}},
	}
}

// sign signs req with the test vector's parameters and returns the headers
// a client would send.
func sign(t testing.TB, req RequestInfo, body []byte, created time.Time) http.Header {
	t.Helper()
	in, sig, digest, err := SignHTTPSig([]byte(testSecret), tgKeyID, req, body, created, tgNonce)
	if err != nil {
		t.Fatal(err)
	}
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(HeaderSignatureInput, in)
	h.Set(HeaderHTTPSignature, sig)
	if digest != "" {
		h.Set(HeaderContentDigest, digest)
	}
	return h
}

func TestSignHTTPSigGolden(t *testing.T) {
	req := tgRequest()
	in, sig, digest, err := SignHTTPSig([]byte(testSecret), tgKeyID, req, []byte(tgBody), time.Unix(tgCreated, 0), tgNonce)
	if err != nil {
		t.Fatal(err)
	}
	if in != tgVectorInput || sig != tgVectorSig || digest != tgDigest {
		t.Fatalf("SignHTTPSig =\n%s\n%s\n%s\nwant\n%s\n%s\n%s", in, sig, digest, tgVectorInput, tgVectorSig, tgDigest)
	}
	if req.Header.Get(HeaderContentDigest) != "" {
		t.Error("SignHTTPSig modified req.Header")
	}

	h := req.Header.Clone()
	h.Set(HeaderSignatureInput, in)
	h.Set(HeaderHTTPSignature, sig)
	h.Set(HeaderContentDigest, digest)
	req.Header = h
	s, err := ParseHTTPSig(h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Label() != Label || s.KeyID() != tgKeyID || s.Nonce() != tgNonce || s.Created().Unix() != tgCreated || !s.Expires().IsZero() {
		t.Errorf("parsed %q %q %q %v %v", s.Label(), s.KeyID(), s.Nonce(), s.Created(), s.Expires())
	}
	if got := strings.Join(s.Components(), " "); got != "@method @authority @path @query content-digest" {
		t.Errorf("Components = %s", got)
	}
	if err := s.Verify([]byte(testSecret), req, []byte(tgBody), time.Unix(tgCreated+10, 0), 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Without a body, no Content-Digest; the authority keeps its
	// non-default port and the query is just "?".
	get := RequestInfo{Method: "GET", Scheme: "https", Authority: "API.example.com:8443", Path: "/v1/orders"}
	_, sig, digest, err = SignHTTPSig([]byte(testSecret), tgKeyID, get, nil, time.Unix(tgCreated, 0), tgNonce)
	if err != nil {
		t.Fatal(err)
	}
	if sig != tgVectorGetSig || digest != "" {
		t.Errorf("GET: signature %s digest %q, want %s and none", sig, digest, tgVectorGetSig)
	}
}

func TestHTTPSigReplayKey(t *testing.T) {
	h := sign(t, tgRequest(), []byte(tgBody), time.Unix(tgCreated, 0))
	s, err := ParseHTTPSig(h)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(tgVectorSig, "tollgate=:"), ":"))
	sum := sha256.Sum256(raw)
	if got, want := s.ReplayKey(), "rfc9421:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ReplayKey = %s, want %s", got, want)
	}
	// Renaming the label, which is not signed, keeps the key.
	h.Set(HeaderSignatureInput, strings.Replace(h.Get(HeaderSignatureInput), "tollgate=", "other=", 1))
	h.Set(HeaderHTTPSignature, strings.Replace(h.Get(HeaderHTTPSignature), "tollgate=", "other=", 1))
	s2, err := ParseHTTPSig(h)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Label() != "other" || s2.ReplayKey() != s.ReplayKey() {
		t.Errorf("relabelled: label %q key %s", s2.Label(), s2.ReplayKey())
	}
}

// signWith signs req with the given components and parameters (a raw
// Signature-Input member value) and returns the signed headers.
func signWith(t *testing.T, req RequestInfo, inner string) http.Header {
	t.Helper()
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(HeaderSignatureInput, "sig1="+inner)
	h.Set(HeaderHTTPSignature, "sig1=:"+base64.StdEncoding.EncodeToString(make([]byte, 32))+":")
	s, err := parseHTTPSig(h)
	if err != nil {
		t.Fatalf("%s: %v", inner, err)
	}
	r := req
	r.Header = h
	base, err := s.SignatureBase(r)
	if err != nil {
		return h // unsigned; Verify must fail before checking the signature
	}
	h.Set(HeaderHTTPSignature, "sig1=:"+base64.StdEncoding.EncodeToString(mac([]byte(testSecret), base))+":")
	return h
}

func TestVerifyPolicy(t *testing.T) {
	const window = 5 * time.Minute
	body := []byte(tgBody)
	now := time.Unix(tgCreated, 0)
	req := tgRequest()
	req.Header.Set(HeaderContentDigest, tgDigest)
	const params = `;created=1700000000;keyid="k";nonce="abcdefgh"`

	verify := func(h http.Header, req RequestInfo, body []byte, now time.Time) error {
		s, err := ParseHTTPSig(h)
		if err != nil {
			return err
		}
		req.Header = h
		return s.Verify([]byte(testSecret), req, body, now, window)
	}
	noBody := req
	noBody.ContentLength = 0

	cases := []struct {
		name  string
		inner string
		req   RequestInfo
		body  []byte
		now   time.Time
		want  error
	}{
		{"all", `("@method" "@authority" "@path" "@query" "content-digest")` + params, req, body, now, nil},
		{"other order and more", `("content-type" "@query" "@target-uri" "@path" "@scheme" "content-digest" "@request-target" "@authority" "@method")` + params, req, body, now, nil},
		{"tag and expires", `("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;expires=1700000060;keyid="k";nonce="abcdefgh";tag="x"`, req, body, now.Add(time.Minute), nil},
		{"expired", `("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;expires=1700000060;keyid="k";nonce="abcdefgh"`, req, body, now.Add(61 * time.Second), ErrOutOfWindow},
		{"too old", `("@method" "@authority" "@path" "@query" "content-digest")` + params, req, body, now.Add(window + time.Second), ErrOutOfWindow},
		{"too new", `("@method" "@authority" "@path" "@query" "content-digest")` + params, req, body, now.Add(-window - time.Second), ErrOutOfWindow},
		{"no @method", `("@authority" "@path" "@query" "content-digest")` + params, req, body, now, ErrMissingComponent},
		{"no @authority", `("@method" "@path" "@query" "content-digest")` + params, req, body, now, ErrMissingComponent},
		{"no @path", `("@method" "@authority" "@query" "content-digest")` + params, req, body, now, ErrMissingComponent},
		{"no @query", `("@method" "@authority" "@path" "content-digest")` + params, req, body, now, ErrMissingComponent},
		{"@target-uri is not enough", `("@method" "@target-uri" "content-digest")` + params, req, body, now, ErrMissingComponent},
		{"body without content-digest", `("@method" "@authority" "@path" "@query")` + params, req, body, now, ErrMissingComponent},
		{"chunked without content-digest", `("@method" "@authority" "@path" "@query")` + params, RequestInfo{Method: "POST", Scheme: "https", Authority: "a", ContentLength: -1}, nil, now, ErrMissingComponent},
		{"no body, no content-digest", `("@method" "@authority" "@path" "@query")` + params, noBody, nil, now, nil},
		{"covered header absent", `("@method" "@authority" "@path" "@query" "x-absent")` + params, noBody, nil, now, ErrMalformed},
	}
	for _, c := range cases {
		err := verify(signWith(t, c.req, c.inner), c.req, c.body, c.now)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}

	// Tampering after signing.
	good := sign(t, tgRequest(), body, now)
	tamper := []struct {
		name string
		f    func(h http.Header, r *RequestInfo, body *[]byte)
		want error
	}{
		{"none", func(http.Header, *RequestInfo, *[]byte) {}, nil},
		{"body", func(_ http.Header, _ *RequestInfo, b *[]byte) { *b = []byte(`{"amount":9000}`) }, ErrDigestMismatch},
		{"digest and body", func(h http.Header, _ *RequestInfo, b *[]byte) {
			*b = []byte("x")
			h.Set(HeaderContentDigest, ContentDigest(*b))
		}, ErrSignatureMismatch},
		{"method", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.Method = "PUT" }, ErrSignatureMismatch},
		{"authority", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.Authority = "evil.example.com" }, ErrSignatureMismatch},
		{"path", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.Path = "/v1/orders/" }, ErrSignatureMismatch},
		{"query", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.RawQuery = "dry_run=0" }, ErrSignatureMismatch},
		{"query removed", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.RawQuery = "" }, ErrSignatureMismatch},
		{"uncovered header", func(h http.Header, _ *RequestInfo, _ *[]byte) { h.Set("Content-Type", "text/plain") }, nil},
		{"default port and case", func(_ http.Header, r *RequestInfo, _ *[]byte) { r.Authority = "API.Example.com:443" }, nil},
		{"signature", func(h http.Header, _ *RequestInfo, _ *[]byte) {
			h.Set(HeaderHTTPSignature, "tollgate=:"+base64.StdEncoding.EncodeToString(make([]byte, 32))+":")
		}, ErrSignatureMismatch},
		{"nonce", func(h http.Header, _ *RequestInfo, _ *[]byte) {
			h.Set(HeaderSignatureInput, strings.Replace(h.Get(HeaderSignatureInput), tgNonce, "zzzzzzzzzzzz", 1))
		}, ErrSignatureMismatch},
		{"created", func(h http.Header, _ *RequestInfo, _ *[]byte) {
			h.Set(HeaderSignatureInput, strings.Replace(h.Get(HeaderSignatureInput), "created=1700000000", "created=1700000001", 1))
		}, ErrSignatureMismatch},
	}
	for _, c := range tamper {
		h := good.Clone()
		r := tgRequest()
		b := bytes.Clone(body)
		c.f(h, &r, &b)
		err := verify(h, r, b, now)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("tampered %s: Verify = %v, want %v", c.name, err, c.want)
		}
	}

	s, err := ParseHTTPSig(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(nil, tgRequest(), body, now, window); err == nil {
		t.Error("Verify with an empty secret succeeded")
	}
}

func TestParseHTTPSigSelection(t *testing.T) {
	sig := func(label string) string {
		return label + "=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":"
	}
	const p = `("@method");created=1;nonce="abcdefgh"`
	cases := []struct {
		name    string
		inputs  []string
		sigs    []string
		label   string
		wantErr error
	}{
		{"first with keyid", []string{`a=` + p + `, b=` + p + `;keyid="b", c=` + p + `;keyid="c"`}, []string{sig("b") + ", " + sig("c")}, "b", nil},
		{"other alg skipped", []string{`a=` + p + `;keyid="a";alg="ed25519", b=` + p + `;keyid="b";alg="hmac-sha256"`}, []string{sig("a"), sig("b")}, "b", nil},
		{"alg not a string skipped", []string{`a=` + p + `;keyid="a";alg=1`}, []string{sig("a")}, "", ErrNoSignature},
		{"alg token skipped", []string{`a=` + p + `;keyid="a";alg=hmac-sha256`}, []string{sig("a")}, "", ErrNoSignature},
		{"field lines combined", []string{`a=` + p, `b=` + p + `;keyid="b"`}, []string{sig("a"), sig("b")}, "b", nil},
		{"item member skipped", []string{`a="x";keyid="a", b=` + p + `;keyid="b"`}, []string{sig("b")}, "b", nil},
		{"none", []string{`a=` + p}, []string{sig("a")}, "", ErrNoSignature},
		{"no input", nil, []string{sig("a")}, "", ErrNoSignature},
		{"no signature member", []string{`a=` + p + `;keyid="a"`}, []string{sig("b")}, "", ErrMalformed},
		{"no signature field", []string{`a=` + p + `;keyid="a"`}, nil, "", ErrMalformed},
	}
	for _, c := range cases {
		h := http.Header{HeaderSignatureInput: c.inputs, HeaderHTTPSignature: c.sigs}
		s, err := ParseHTTPSig(h)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.wantErr)
			continue
		}
		if err == nil && s.Label() != c.label {
			t.Errorf("%s: label %q, want %q", c.name, s.Label(), c.label)
		}
	}
}

func TestParseHTTPSigMalformed(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	const p = `;created=1700000000;keyid="k";nonce="abcdefgh"`
	cases := []struct{ name, input, sig string }{
		{"not a dictionary", `sig1=("@method"`, ":" + good + ":"},
		{"signature not a dictionary", `sig1=("@method")` + p, "::"},
		{"signature not bytes", `sig1=("@method")` + p, `"abc"`},
		{"signature inner list", `sig1=("@method")` + p, `(:` + good + `:)`},
		{"signature 31 bytes", `sig1=("@method")` + p, ":" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + ":"},
		{"component parameter", `sig1=("@method" "content-type";sf)` + p, ":" + good + ":"},
		{"query-param", `sig1=("@query-param";name="a")` + p, ":" + good + ":"},
		{"@status", `sig1=("@status")` + p, ":" + good + ":"},
		{"unknown derived", `sig1=("@foo")` + p, ":" + good + ":"},
		{"uppercase field", `sig1=("Content-Type")` + p, ":" + good + ":"},
		{"empty component", `sig1=("")` + p, ":" + good + ":"},
		{"field with space", `sig1=("a b")` + p, ":" + good + ":"},
		{"token component", `sig1=(date)` + p, ":" + good + ":"},
		{"duplicate component", `sig1=("@method" "@method")` + p, ":" + good + ":"},
		{"no created", `sig1=("@method");keyid="k";nonce="abcdefgh"`, ":" + good + ":"},
		{"created string", `sig1=("@method");created="1";keyid="k";nonce="abcdefgh"`, ":" + good + ":"},
		{"created decimal", `sig1=("@method");created=1.5;keyid="k";nonce="abcdefgh"`, ":" + good + ":"},
		{"created negative", `sig1=("@method");created=-1;keyid="k";nonce="abcdefgh"`, ":" + good + ":"},
		{"expires before created", `sig1=("@method")` + p + `;expires=1699999999`, ":" + good + ":"},
		{"expires token", `sig1=("@method")` + p + `;expires=never`, ":" + good + ":"},
		{"keyid empty", `sig1=("@method");created=1;keyid="";nonce="abcdefgh"`, ":" + good + ":"},
		{"keyid token", `sig1=("@method");created=1;keyid=k;nonce="abcdefgh"`, ":" + good + ":"},
		{"keyid too long", `sig1=("@method");created=1;keyid="` + strings.Repeat("k", 257) + `";nonce="abcdefgh"`, ":" + good + ":"},
		{"no nonce", `sig1=("@method");created=1;keyid="k"`, ":" + good + ":"},
		{"nonce short", `sig1=("@method");created=1;keyid="k";nonce="abcdefg"`, ":" + good + ":"},
		{"nonce long", `sig1=("@method");created=1;keyid="k";nonce="` + strings.Repeat("n", 129) + `"`, ":" + good + ":"},
		{"nonce token", `sig1=("@method");created=1;keyid="k";nonce=abcdefgh`, ":" + good + ":"},
	}
	cases = append(cases, struct{ name, input, sig string }{
		"65 components", `sig1=(` + strings.Repeat(`"@method" `, 64) + `"x")` + p, ":" + good + ":"})
	for _, c := range cases {
		h := http.Header{HeaderSignatureInput: {c.input}, HeaderHTTPSignature: {"sig1=" + c.sig}}
		if s, err := ParseHTTPSig(h); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseHTTPSig = %v, %v; want ErrMalformed", c.name, s, err)
		}
	}
}

func TestComponentValues(t *testing.T) {
	req := RequestInfo{
		Method: "PATCH", Scheme: "HTTPS", Authority: "Api.Example.COM:443",
		Path: "/a%2Fb/%7Ec", RawQuery: "x=%41&y",
		Header: http.Header{
			"X-Multi": {" a ", "b\t", "c, d"},
			"X-Empty": {""},
		},
	}
	want := map[string]string{
		"@method":         "PATCH",
		"@scheme":         "https",
		"@authority":      "api.example.com",
		"@path":           "/a%2Fb/%7Ec",
		"@query":          "?x=%41&y",
		"@request-target": "/a%2Fb/%7Ec?x=%41&y",
		"@target-uri":     "https://api.example.com/a%2Fb/%7Ec?x=%41&y",
		"x-multi":         "a, b, c, d",
		"x-empty":         "",
	}
	for c, w := range want {
		got, err := componentValue(c, &req)
		if err != nil || got != w {
			t.Errorf("%s = %q, %v; want %q", c, got, err, w)
		}
	}

	empty := RequestInfo{Method: "GET", Scheme: "http", Authority: "example.com:80"}
	for c, w := range map[string]string{
		"@path": "/", "@query": "?", "@request-target": "/",
		"@authority": "example.com", "@target-uri": "http://example.com/",
	} {
		if got, err := componentValue(c, &empty); err != nil || got != w {
			t.Errorf("empty request: %s = %q, %v; want %q", c, got, err, w)
		}
	}
	if got, _ := componentValue("@authority", &RequestInfo{Scheme: "https", Authority: "example.com:80"}); got != "example.com:80" {
		t.Errorf("https authority with port 80 = %q", got)
	}
	if got, _ := componentValue("@authority", &RequestInfo{Scheme: "https", Authority: "[::1]:443"}); got != "[::1]" {
		t.Errorf("IPv6 authority = %q", got)
	}
	for _, c := range []string{"@scheme", "@authority", "@target-uri", "@method", "x-absent"} {
		if _, err := componentValue(c, &RequestInfo{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s of an empty request: %v", c, err)
		}
	}

	// A header value with a line break could forge base lines.
	h := http.Header{HeaderSignatureInput: {`s=("x-inject");created=1;keyid="k"`}, HeaderHTTPSignature: {"s=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":"}}
	s, err := parseHTTPSig(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a\nb", "a\rb", "a\x00b", "a\x7fb"} {
		if _, err := s.SignatureBase(RequestInfo{Header: http.Header{"X-Inject": {v}}}); !errors.Is(err, ErrMalformed) {
			t.Errorf("SignatureBase with %q: %v", v, err)
		}
	}
}

func TestNewRequestInfo(t *testing.T) {
	// Server side: the target comes from the request line, as sent.
	r, ri, _ := readRequest(t, "GET /a%2Fb/%7e?x=%41&y=a+b HTTP/1.1\r\nHost: Example.com:8443\r\nX-A: 1\r\n\r\n")
	want := RequestInfo{Method: "GET", Scheme: "https", Authority: "Example.com:8443", Path: "/a%2Fb/%7e", RawQuery: "x=%41&y=a+b", Header: r.Header}
	if ri.Method != want.Method || ri.Scheme != want.Scheme || ri.Authority != want.Authority ||
		ri.Path != want.Path || ri.RawQuery != want.RawQuery || ri.ContentLength != 0 || ri.Header.Get("X-A") != "1" {
		t.Errorf("server RequestInfo = %+v, want %+v", ri, want)
	}

	// Client side: what Go's client sends.
	cr, err := http.NewRequest("POST", "https://api.example.com/v1/a%20b?q=1", strings.NewReader(tgBody))
	if err != nil {
		t.Fatal(err)
	}
	ci := NewRequestInfo(cr, cr.URL.Scheme)
	if ci.Method != "POST" || ci.Scheme != "https" || ci.Authority != "api.example.com" ||
		ci.Path != "/v1/a%20b" || ci.RawQuery != "q=1" || ci.ContentLength != int64(len(tgBody)) ||
		cr.URL.RequestURI() != ci.Path+"?"+ci.RawQuery {
		t.Errorf("client RequestInfo = %+v", ci)
	}
	cr.Host = "other.example.com"
	cr.Method = ""
	if ci := NewRequestInfo(cr, "https"); ci.Authority != "other.example.com" || ci.Method != "GET" {
		t.Errorf("client RequestInfo with Host = %+v", ci)
	}
}

// TestEndToEnd signs a request with Go's client types and verifies it as a
// server parses it.
func TestEndToEnd(t *testing.T) {
	cr, err := http.NewRequest("PUT", "https://api.example.com/v1/items/a%2Fb?force=true", strings.NewReader(tgBody))
	if err != nil {
		t.Fatal(err)
	}
	cr.Header.Set("Content-Type", "application/json")
	created := time.Unix(tgCreated, 0)
	in, sig, digest, err := SignHTTPSig([]byte(testSecret), tgKeyID, NewRequestInfo(cr, "https"), []byte(tgBody), created, NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	cr.Header.Set(HeaderSignatureInput, in)
	cr.Header.Set(HeaderHTTPSignature, sig)
	cr.Header.Set(HeaderContentDigest, digest)

	var wire bytes.Buffer
	if err := cr.Write(&wire); err != nil {
		t.Fatal(err)
	}
	sr, req, body := readRequest(t, wire.String())
	s, err := ParseHTTPSig(sr.Header)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify([]byte(testSecret), req, body, created.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v\nrequest:\n%s", err, wire.String())
	}
}

func TestSignHTTPSigErrors(t *testing.T) {
	req := tgRequest()
	created := time.Unix(tgCreated, 0)
	cases := []struct {
		name          string
		secret        string
		keyID, nonce  string
		created       time.Time
		authority     string
		wantMalformed bool
	}{
		{"empty secret", "", tgKeyID, tgNonce, created, "a", false},
		{"empty keyID", testSecret, "", tgNonce, created, "a", false},
		{"long keyID", testSecret, strings.Repeat("k", 257), tgNonce, created, "a", false},
		{"keyID with newline", testSecret, "k\n", tgNonce, created, "a", true},
		{"keyID not ASCII", testSecret, "clé", tgNonce, created, "a", true},
		{"short nonce", testSecret, tgKeyID, "abcdefg", created, "a", false},
		{"nonce with tab", testSecret, tgKeyID, "abcdefgh\t", created, "a", true},
		{"before 1970", testSecret, tgKeyID, tgNonce, time.Unix(-1, 0), "a", false},
		{"no authority", testSecret, tgKeyID, tgNonce, created, "", true},
	}
	for _, c := range cases {
		r := req
		r.Authority = c.authority
		_, _, _, err := SignHTTPSig([]byte(c.secret), c.keyID, r, []byte(tgBody), c.created, c.nonce)
		if err == nil || errors.Is(err, ErrMalformed) != c.wantMalformed {
			t.Errorf("%s: SignHTTPSig error = %v", c.name, err)
		}
	}
	if _, _, _, err := SignHTTPSig([]byte(testSecret), `k"\`, req, []byte(tgBody), created, `a"b\cdefgh`); err != nil {
		t.Errorf("SignHTTPSig with quotes and backslashes: %v", err)
	}
}
