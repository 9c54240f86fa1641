package headerpolicy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The constants are canonical: code indexes http.Header maps with them.
func TestNamesCanonical(t *testing.T) {
	for _, k := range []string{APIKey, Timestamp, Nonce, Signature, HTTPSignature, SignatureInput, SignInWithX,
		PaymentSignature, Payment, Authorization, RequestID, Org, App, Credential, Scopes, ServiceToken} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
		if k != Authorization && Classify(k) == Other {
			t.Errorf("%q is not owned", k)
		}
	}
}

func TestClassify(t *testing.T) {
	for name, want := range map[string]Class{
		"X-Api-Key": ClassCredential, "x-api-key": ClassCredential, "X_API_KEY": ClassCredential, "X_api-Key": ClassCredential,
		"X-Timestamp": ClassCredential, "X-Nonce": ClassCredential, "X-Signature": ClassCredential,
		"Signature": ClassCredential, "Signature-Input": ClassCredential, "Signature_Input": ClassCredential,
		"Sign-In-With-X": ClassCredential, "SIGN_IN_WITH_X": ClassCredential,
		"Payment-Signature": ClassCredential, "X-Payment": ClassCredential,
		"X-Tollgate-Scopes": ClassIdentity, "X_Tollgate_Scopes": ClassIdentity, "x_tollgate_org": ClassIdentity,
		"X-Tollgate-Anything": ClassIdentity, "X-Request-Id": ClassIdentity, "X_REQUEST_ID": ClassIdentity,
		"X-Forwarded-For": ClassForwarding, "X_Forwarded_For": ClassForwarding, "X-Forwarded-Prefix": ClassForwarding,
		"Forwarded": ClassForwarding, "X-Real-Ip": ClassForwarding, "X_Real_IP": ClassForwarding,
		"X-Original-Url": ClassOverride, "X-Original-Uri": ClassOverride, "X-Rewrite-Url": ClassOverride,
		"X-Http-Method-Override": ClassOverride, "X_HTTP_METHOD_OVERRIDE": ClassOverride, "X-Http-Method": ClassOverride,
		"X-Method-Override": ClassOverride,
		"Authorization":     Other, "Content-Type": Other, "X-Api-Keys": Other, "X-Signatures": Other, "Signature-Agent": Other,
		"X-Tollgat": Other, "X-Requested-With": Other, "X-Forwarded": Other, "Content-Digest": Other, "": Other,
		"X-Nonce-Extra": Other, "Forwarded-For": Other,
		// lighttpd's CGI and FastCGI read every byte but letters and
		// digits as "_": these are HTTP_X_TOLLGATE_SCOPES and so on.
		"X.Tollgate.Scopes": ClassIdentity, "X+Tollgate+Org": ClassIdentity, "X~tollgate!credential": ClassIdentity,
		"X.Request.Id": ClassIdentity, "X.Api.Key": ClassCredential, "Sign.In.With.X": ClassCredential,
		"X.Forwarded.For": ClassForwarding, "X*Real*Ip": ClassForwarding, "X.Http.Method.Override": ClassOverride,
		"X.Original.Url": ClassOverride, "XTollgateScopes": Other, "X--Tollgate-Scopes": Other,
	} {
		if got := Classify(name); got != want {
			t.Errorf("Classify(%q) = %d, want %d", name, got, want)
		}
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		// As net/http's server stores them: canonical keys, where
		// canonicalization leaves "_" as it is.
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func keys(h http.Header) []string {
	ks := make([]string, 0, len(h))
	for k := range h {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestStripInbound(t *testing.T) {
	in := func() http.Header {
		return header(
			"X-Api-Key", "k", "X_API_KEY", "k2", "X-Signature", "s", "X-Timestamp", "1", "X-Nonce", "n",
			"Signature", "sig", "Signature-Input", "si", "Sign-In-With-X", "w", "Payment-Signature", "p", "X-Payment", "p1",
			"X-Tollgate-Scopes", "admin", "X_Tollgate_Scopes", "admin", "X_tollgate_org", "org_x", "X-Tollgate-App", "a",
			"X-Request-Id", "r", "X_Request_Id", "r2",
			"X-Forwarded-For", "1.2.3.4", "X_Forwarded_For", "1.2.3.4", "X-Forwarded-Prefix", "/admin", "Forwarded", "for=1.2.3.4",
			"X-Real-Ip", "1.2.3.4",
			"X-Original-Url", "/admin", "X-Http-Method-Override", "DELETE",
			"Authorization", "Basic x", "Content-Type", "application/json", "Accept", "*/*",
			"X.Tollgate.Scopes", "admin", "X+Tollgate+Org", "org_x", "X.Api.Key", "k3", "X.Forwarded.For", "1.2.3.4",
			"X.Http.Method.Override", "DELETE",
		)
	}
	h := in()
	StripInbound(h, false)
	if got, want := keys(h), []string{"Accept", "Authorization", "Content-Type"}; !slices.Equal(got, want) {
		t.Errorf("untrusted peer: kept %v, want %v", got, want)
	}
	h = in()
	StripInbound(h, true)
	if got, want := keys(h), []string{"Accept", "Authorization", "Content-Type", "Forwarded", "X-Forwarded-For", "X-Forwarded-Prefix", "X-Real-Ip"}; !slices.Equal(got, want) {
		t.Errorf("trusted peer: kept %v, want %v", got, want)
	}
}

func TestStripAuthorization(t *testing.T) {
	for _, tc := range []struct {
		values []string
		kept   bool
	}{
		{[]string{"Basic dXNlcjpwYXNz"}, true},
		{[]string{"Digest username=x"}, true},
		{[]string{"Bearer tok"}, false},
		{[]string{"bearer tok"}, false},
		{[]string{"BEARER tok"}, false},
		{[]string{"Bearer\ttok"}, false},
		{[]string{"\tBearer  tok"}, false},
		{[]string{"Bearer"}, false},
		{[]string{"SIWX abc.def"}, false},
		{[]string{"siwx\tabc"}, false},
		{[]string{"Basic x", "Bearer tok"}, false},
		{[]string{"Basic x", "Basic y"}, false}, // ambiguous
		{[]string{"Basic x, Bearer tok"}, false},
		{[]string{"Basic x,Bearer tok"}, false},
		{[]string{"Basic Bearer"}, true}, // a Basic credential, whatever its bytes
	} {
		h := http.Header{Authorization: tc.values}
		StripAuthorization(h)
		if kept := len(h[Authorization]) > 0; kept != tc.kept {
			t.Errorf("StripAuthorization(%q): kept = %v, want %v", tc.values, kept, tc.kept)
		}
	}
}

func TestForged(t *testing.T) {
	for _, tc := range []struct {
		h      http.Header
		forged string
	}{
		{header("X-Api-Key", "k", "Authorization", "Bearer t", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-Uri", "/v1/x",
			"X-Tollgate-Service-Token", "s", "X-Request-Id", "r", "Accept", "*/*"), ""},
		{header("X_Tollgate_Scopes", "admin"), "X_tollgate_scopes"},
		{header("X-Tollgate-Scopes", "admin"), "X-Tollgate-Scopes"},
		{header("X-Tollgate-Plan", "pro"), "X-Tollgate-Plan"},
		{header("X_Api_Key", "k"), "X_api_key"},
		{header("X_Forwarded_For", "1.2.3.4"), "X_forwarded_for"},
		{header("X_Request_Id", "r"), "X_request_id"},
		{header("X-Original-Url", "/admin"), "X-Original-Url"},
		{header("X-Http-Method-Override", "DELETE"), "X-Http-Method-Override"},
		{header("X-Original-Uri", "/v1/x", "X-Original-Method", "GET"), ""},
		{header("X-Original-Uri", "/v1/x", "X-Forwarded-Uri", "/v1/y"), "X-Original-Uri"},
		{header("X.Tollgate.Scopes", "admin"), "X.tollgate.scopes"},
		{header("X+Tollgate+Org", "org_x"), "X+tollgate+org"},
		{header("X.Api.Key", "k"), "X.api.key"},
		{header("X.Forwarded.For", "1.2.3.4"), "X.forwarded.for"},
		{header("X~Request~Id", "r"), "X~request~id"},
	} {
		name, forged := Forged(tc.h)
		if tc.forged == "" && forged {
			t.Errorf("Forged(%v) = %q, want none", keys(tc.h), name)
		}
		if tc.forged != "" && (!forged || name != tc.forged) {
			t.Errorf("Forged(%v) = %q, %v; want %q", keys(tc.h), name, forged, tc.forged)
		}
	}
}

func TestScheme(t *testing.T) {
	for in, want := range map[string][2]string{
		"Bearer abc": {"Bearer", "abc"}, "Bearer\tabc": {"Bearer", "abc"}, "  Bearer   abc  ": {"Bearer", "abc"},
		"Bearer": {"Bearer", ""}, "": {"", ""}, "SIWX a.b": {"SIWX", "a.b"},
	} {
		if s, r := Scheme(in); s != want[0] || r != want[1] {
			t.Errorf("Scheme(%q) = %q, %q; want %q", in, s, r, want)
		}
	}
}

// FuzzClassify: any spelling that folds to an owned name is classified as
// that name is.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"X-Api-Key", "x_tollgate_scopes", "X-Forwarded-For", "Signature", "Content-Type"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				return // header names are tokens: ASCII
			}
		}
		// As lighttpd's CGI reads it: every byte but letters and digits
		// is "_", which is what "-" becomes too.
		folded := strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(name))
		if got, want := Classify(name), Classify(folded); got != want {
			t.Fatalf("Classify(%q) = %d but Classify(%q) = %d", name, got, folded, want)
		}
		if Classify(name) != Other && folded == strings.ToLower(name) && !Canonical(name) {
			t.Fatalf("Canonical(%q) = false for letters, digits and dashes", name)
		}
	})
}

// BenchmarkStripInbound: a typical API request's headers, none of them
// owned: the per-request cost of the policy on the gateway's hot path.
func BenchmarkStripInbound(b *testing.B) {
	h := header("Accept", "*/*", "User-Agent", "curl/8.5.0", "Content-Type", "application/json",
		"Accept-Encoding", "gzip", "Content-Length", "12", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	b.ReportAllocs()
	for b.Loop() {
		StripInbound(h, false)
	}
}
