package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/reqsign"
)

const (
	// The README's byte-exact example.
	signSecret = "tgs_4kQ9zR2mX7pL1vN8rT3wY6bB0cH5jK9sA2eG7uI4oZx"
	signTS     = "1795330800"
	signKey    = "tgk_sign_test"
	signKeyID  = "key_sign_test"
	signWindow = 5 * time.Minute
)

var signEnv = []string{"HOME=/nonexistent", signingSecretEnv + "=" + signSecret}

// signOut runs `tollgate sign args…` with environ and returns its standard
// output.
func signOut(t *testing.T, environ []string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, environ)
	root.SetArgs(append([]string{"sign"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustSign(t *testing.T, args ...string) string {
	t.Helper()
	out, err := signOut(t, signEnv, args...)
	if err != nil {
		t.Fatalf("tollgate sign %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// parseHeaders parses `Name: value` lines.
func parseHeaders(t *testing.T, out string) http.Header {
	t.Helper()
	h := http.Header{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("not a header line: %q", line)
		}
		h.Add(k, v)
	}
	return h
}

func TestSignSeedREADMEExample(t *testing.T) {
	out := mustSign(t, "--method", "POST", "--url", "https://api.example.com/v1/orders?dry=1",
		"--data", `{"symbol":"ETH","qty":2}`, "--key", signKey, "--timestamp", signTS)
	want := "X-API-KEY: " + signKey + "\nX-Timestamp: 1795330800\n" +
		"X-Signature: d282e5fa4dc7e28af74f9ae380c0634250b4be999dae326e61b39d495dca4a39\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	out = mustSign(t, "--url", "https://api.example.com/v1/prices?symbol=BTC", "--key", signKey, "--timestamp", signTS)
	if !strings.HasSuffix(out, "\nX-Signature: 03be1830419e422c1d47d4051619df6908513590c77ea62690ddbe477d9fc516\n") {
		t.Errorf("GET output:\n%s", out)
	}
}

func TestSignSeedVerifies(t *testing.T) {
	binary := "{\"n\":1}\x00\xff\r\n"
	file := filepath.Join(t.TempDir(), "body.bin")
	if err := os.WriteFile(file, []byte(binary), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, url, target, body string
		extra                           []string
	}{
		{"GET with query", "GET", "https://api.example.com/v1/prices?symbol=BTC&q=a%2Fb", "/v1/prices?symbol=BTC&q=a%2Fb", "", nil},
		{"no path", "GET", "http://api.example.com", "/", "", nil},
		{"POST --data", "POST", "https://api.example.com/v1/orders?dry=1", "/v1/orders?dry=1", `{"n":1}`, []string{"--data", `{"n":1}`}},
		{"POST --data-file", "POST", "https://api.example.com/v1/blob", "/v1/blob", binary, []string{"--data-file", file}},
		{"POST --nonce", "POST", "https://api.example.com/v1/orders", "/v1/orders", "x", []string{"--data", "x", "--nonce"}},
		{"fragment dropped", "DELETE", "https://api.example.com/v1/orders/1#top", "/v1/orders/1", "", nil},
	} {
		args := append([]string{"--method", tc.method, "--url", tc.url, "--key", signKey, "--timestamp", signTS}, tc.extra...)
		h := parseHeaders(t, mustSign(t, args...))
		wantNonce := slices.Contains(tc.extra, "--nonce")
		if len(h) != 3+btoi(wantNonce) || (h.Get(reqsign.HeaderNonce) != "") != wantNonce {
			t.Errorf("%s: headers %v", tc.name, h)
		}
		sh, err := reqsign.ParseSeedHeaders(h)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sh.APIKey != signKey || sh.Timestamp != signTS {
			t.Errorf("%s: %+v", tc.name, sh)
		}
		if err := reqsign.VerifySeed([]byte(signSecret), sh, tc.method, tc.target, []byte(tc.body), time.Unix(1795330800, 0), signWindow); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSignRFC9421Verifies(t *testing.T) {
	for _, body := range []string{"", `{"symbol":"ETH","qty":2}`} {
		args := []string{"--method", "POST", "--url", "https://API.example.com:443/v1/orders?dry=1", "--key", signKey,
			"--key-id", signKeyID, "--scheme", "rfc9421", "--timestamp", signTS}
		if body != "" {
			args = append(args, "--data", body)
		}
		out := mustSign(t, args...)
		h := parseHeaders(t, out)
		names := slices.Collect(func(yield func(string) bool) {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				name, _, _ := strings.Cut(line, ":")
				if !yield(name) {
					return
				}
			}
		})
		want := []string{"X-API-KEY", "Signature-Input", "Signature"}
		if body != "" {
			want = append(want, "Content-Digest")
		}
		if !slices.Equal(names, want) {
			t.Errorf("body %q: header lines %v, want %v", body, names, want)
		}

		// The request as the gateway receives it.
		r := httptest.NewRequest(http.MethodPost, "/v1/orders?dry=1", strings.NewReader(body))
		r.Host = "api.example.com"
		r.Header = h
		sig, err := reqsign.ParseHTTPSig(h)
		if err != nil {
			t.Fatal(err)
		}
		if sig.KeyID() != signKeyID || sig.Created().Unix() != 1795330800 || len(sig.Nonce()) < 8 {
			t.Errorf("keyid %q, created %v, nonce %q", sig.KeyID(), sig.Created(), sig.Nonce())
		}
		if err := sig.Verify([]byte(signSecret), reqsign.NewRequestInfo(r, "https"), []byte(body), time.Unix(1795330800, 0), signWindow); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		// It covers the host.
		r.Host = "evil.example.com"
		if err := sig.Verify([]byte(signSecret), reqsign.NewRequestInfo(r, "https"), []byte(body), time.Unix(1795330800, 0), signWindow); err == nil {
			t.Errorf("body %q: verifies for another host", body)
		}
	}
}

// curlArgs runs the command line out with sh, curl being a function that
// prints its arguments, and returns them.
func curlArgs(t *testing.T, out string) []string {
	t.Helper()
	script := "curl() { printf '%s\\0' \"$@\"; }\n" + out
	got, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSuffix(string(got), "\x00"), "\x00")
}

func TestSignCurl(t *testing.T) {
	const body = "it's \"quoted\" $HOME `id` \\ \n and a new line"
	args := []string{"--method", "POST", "--url", "https://api.example.com/v1/orders?dry=1&x=$y#f", "--data", body,
		"--key", "tgk_it's", "--timestamp", signTS}
	headers := mustSign(t, args...)
	out := mustSign(t, append(args, "--curl")...)
	sig := parseHeaders(t, headers).Get(reqsign.HeaderSignature)
	if !strings.Contains(out, "'X-Signature: "+sig+"'") {
		t.Errorf("curl command lacks the signature %s:\n%s", sig, out)
	}
	got := curlArgs(t, out)
	want := []string{"-X", "POST"}
	for _, line := range strings.Split(strings.TrimSuffix(headers, "\n"), "\n") {
		want = append(want, "-H", line)
	}
	want = append(want, "--data-binary", body, "https://api.example.com/v1/orders?dry=1&x=$y")
	if !slices.Equal(got, want) {
		t.Errorf("curl arguments:\n%q\nwant\n%q\ncommand:\n%s", got, want, out)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		wants []string // in order
	}{
		{"data file", []string{"--method", "PUT", "--url", "http://h/x", "--data-file", "/dev/null"},
			[]string{"-X", "PUT", "--data-binary", "@/dev/null", "http://h/x"}},
		{"data like a file name", []string{"--method", "POST", "--url", "http://h/x", "--data", "@/etc/passwd"},
			[]string{"--data-raw", "@/etc/passwd", "http://h/x"}},
		{"glob characters", []string{"--url", "http://h/x?a[]=1&b={2}"},
			[]string{"-X", "GET", "--globoff", "http://h/x?a[]=1&b={2}"}},
		{"dot segments", []string{"--url", "http://h/a/../b/%2e/c"},
			[]string{"--path-as-is", "http://h/a/../b/%2e/c"}},
		{"HEAD", []string{"--method", "HEAD", "--url", "http://h/x"},
			[]string{"--head", "-H", "http://h/x"}},
	} {
		out := mustSign(t, append(tc.args, "--key", signKey, "--curl")...)
		got := curlArgs(t, out)
		i := 0
		for _, a := range got {
			if i < len(tc.wants) && a == tc.wants[i] {
				i++
			}
		}
		if i < len(tc.wants) {
			t.Errorf("%s: arguments %q lack %q in order", tc.name, got, tc.wants)
		}
		if slices.Contains(got, "--data-binary") && slices.Contains(got, "--data-raw") ||
			tc.name == "HEAD" && slices.Contains(got, "-X") {
			t.Errorf("%s: arguments %q", tc.name, got)
		}
	}
}

// TestSignCurlEndToEnd runs the printed curl commands against a server that
// verifies them as the gateway does.
func TestSignCurlEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var err error
		if len(r.Header.Values(reqsign.HeaderSignatureInput)) > 0 {
			var sig *reqsign.HTTPSig
			if sig, err = reqsign.ParseHTTPSig(r.Header); err == nil {
				err = sig.Verify([]byte(signSecret), reqsign.NewRequestInfo(r, "http"), body, time.Now(), signWindow)
			}
		} else {
			var h reqsign.SeedHeaders
			if h, err = reqsign.ParseSeedHeaders(r.Header); err == nil {
				err = reqsign.VerifySeed([]byte(signSecret), h, r.Method, r.RequestURI, body, time.Now(), signWindow)
			}
		}
		if err != nil || r.Header.Get("X-API-KEY") != signKey {
			http.Error(w, fmt.Sprintf("refused: %v", err), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "ok %s %s %s", r.Method, r.RequestURI, body)
	}))
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, []byte("from a file\n\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"seed", "rfc9421"} {
		for _, tc := range []struct {
			method, target string
			data           []string
			want           string
		}{
			{"GET", "/v1/hello", nil, "ok GET /v1/hello "},
			{"GET", "/v1/a%2Fb/c?q=x%20y&r[]=1&s=", nil, "ok GET /v1/a%2Fb/c?q=x%20y&r[]=1&s= "},
			{"POST", "/v1/orders?dry=1", []string{"--data", `{"s":"it's"}`}, `ok POST /v1/orders?dry=1 {"s":"it's"}`},
			{"POST", "/v1/empty", nil, "ok POST /v1/empty "},
			{"GET", "/v1/a/./../b?x={1}", nil, "ok GET /v1/a/./../b?x={1} "},
			{"GET", "/v1/q?", nil, "ok GET /v1/q? "},
			{"PUT", "/v1/file", []string{"--data-file", file}, "ok PUT /v1/file from a file\n\x00"},
		} {
			args := append([]string{"--method", tc.method, "--url", srv.URL + tc.target, "--key", signKey,
				"--key-id", signKeyID, "--scheme", scheme, "--curl"}, tc.data...)
			cmdline := mustSign(t, args...)
			cmd := exec.Command("sh", "-c", strings.Replace(cmdline, "curl", "curl -sS --noproxy '*'", 1))
			got, err := cmd.CombinedOutput()
			if err != nil || string(got) != tc.want {
				t.Errorf("%s %s %s: %v\ngot  %q\nwant %q\ncommand:\n%s", scheme, tc.method, tc.target, err, got, tc.want, cmdline)
			}
		}
	}
}

func TestSignErrors(t *testing.T) {
	base := []string{"--url", "https://api.example.com/v1/x", "--key", signKey}
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"no secret", []string{"HOME=/"}, base, signingSecretEnv + " is not set"},
		{"empty secret", []string{signingSecretEnv + "="}, base, signingSecretEnv + " is not set"},
		{"data and data-file", signEnv, append(base, "--data", "x", "--data-file", "f"), "[data data-file]"},
		{"rfc9421 without key ID", signEnv, append(base, "--scheme", "rfc9421"), "--key-id"},
		{"unknown scheme", signEnv, append(base, "--scheme", "hmac"), `--scheme "hmac"`},
		{"no URL", signEnv, []string{"--key", signKey}, `"url"`},
		{"no key", signEnv, []string{"--url", "https://api.example.com/"}, `"key"`},
		{"empty key", signEnv, []string{"--url", "https://api.example.com/", "--key", ""}, "--key is empty"},
		{"relative URL", signEnv, []string{"--url", "/v1/x", "--key", signKey}, "absolute http or https URL"},
		{"other scheme", signEnv, []string{"--url", "ftp://h/x", "--key", signKey}, "absolute http or https URL"},
		{"bad method", signEnv, append(base, "--method", "GET X"), "invalid method"},
		{"missing file", signEnv, append(base, "--data-file", filepath.Join(t.TempDir(), "none")), "no such file"},
		{"negative timestamp", signEnv, append(base, "--timestamp", "-5"), "1970"},
	} {
		out, err := signOut(t, tc.environ, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q", tc.name, out)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":             "''",
		"POST":         "POST",
		"@/tmp/b.json": "@/tmp/b.json",
		"a b":          "'a b'",
		"it's":         `'it'\''s'`,
		"~x":           "'~x'",
		"$HOME":        "'$HOME'",
		"a\nb":         "'a\nb'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestGetenv(t *testing.T) {
	env := []string{"A=1", "TOLLGATE_SIGNING_SECRET=first", "TOLLGATE_SIGNING_SECRET=second", "B"}
	if got := getenv(env, signingSecretEnv); got != "first" {
		t.Errorf("got %q", got)
	}
	if got := getenv(env, "B"); got != "" {
		t.Errorf("B: got %q", got)
	}
}
