package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/whsig"
)

const (
	verifyNewSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	verifyOldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

var (
	verifyTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	verifyNow  = verifyTime.Add(time.Minute).Format(time.RFC3339)
	verifyBody = []byte(`{"id":"msg_verify1","type":"apikey.created","data":{}}`)
)

// verifyRun runs `tollgate verify args…` with environ and stdin, and returns
// everything it printed.
func verifyRun(t *testing.T, environ []string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, environ)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"verify"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// deliveryHeaders signs verifyBody at ts with secrets and returns the
// headers as "Name: value" lines.
func deliveryHeaders(t *testing.T, ts time.Time, body []byte, secrets ...string) []byte {
	t.Helper()
	var keys [][]byte
	for _, s := range secrets {
		k, err := whsig.ParseSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	h, err := whsig.Sign("msg_verify1", ts, body, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return headerFile(h, "")
}

// headerFile writes h as "Name: value" CRLF lines, after first if not "".
func headerFile(h http.Header, first string) []byte {
	var b bytes.Buffer
	if first != "" {
		b.WriteString(first + "\r\n")
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyWebhook(t *testing.T) {
	env := []string{"HOME=/nonexistent", webhookSecretEnv + "=" + verifyOldSecret}
	signed := writeTemp(t, "headers", deliveryHeaders(t, verifyTime, verifyBody, verifyNewSecret, verifyOldSecret))
	body := writeTemp(t, "body", verifyBody)
	secretFile := writeTemp(t, "secret", []byte(verifyNewSecret+"\n"))
	lfOnly := bytes.ReplaceAll(deliveryHeaders(t, verifyTime, verifyBody, verifyOldSecret), []byte("\r\n"), []byte("\n"))
	var lower []byte
	for _, line := range bytes.SplitAfter(lfOnly, []byte("\n")) {
		name, value, _ := bytes.Cut(line, []byte(":"))
		if len(value) > 0 {
			line = append(append(bytes.ToLower(name), ':'), value...)
		}
		lower = append(lower, line...)
	}
	rawRequest := writeTemp(t, "request", append([]byte("POST /hooks/tollgate HTTP/1.1\n"), lower...))
	seedOnly := writeTemp(t, "seed", []byte("X-Webhook-Signature: "+
		whsigHeader(t, verifyTime, verifyBody, verifyOldSecret, whsig.HeaderSignature)+"\n"))
	stdOnly := writeTemp(t, "std", bytes.ReplaceAll(deliveryHeaders(t, verifyTime, verifyBody, verifyOldSecret),
		[]byte("X-Webhook-Signature"), []byte("X-Other")))
	tampered := writeTemp(t, "tampered", bytes.Replace(verifyBody, []byte("created"), []byte("deleted"), 1))
	noSig := writeTemp(t, "nosig", []byte("Content-Type: application/json\n"))

	tests := []struct {
		name  string
		env   []string
		stdin string
		args  []string
		want  string // the output if valid, or what the error says
		valid bool
	}{
		{name: "valid", args: []string{"--headers", signed, "--body", body, "--now", verifyNow}, valid: true,
			want: "valid (signed by the secret in $TOLLGATE_WEBHOOK_SECRET; X-Webhook-Signature and Webhook-Signature)\n"},
		{name: "secret file, new secret", args: []string{"--secret-file", secretFile, "--headers", signed, "--body", body, "--now", verifyNow}, valid: true,
			want: "valid (signed by the secret in file " + secretFile + "; X-Webhook-Signature and Webhook-Signature)\n"},
		{name: "another variable", env: []string{"MY_SECRET=" + verifyNewSecret}, args: []string{"--secret-env", "MY_SECRET", "--headers", signed, "--body", body, "--now", verifyNow}, valid: true,
			want: "valid (signed by the secret in $MY_SECRET; X-Webhook-Signature and Webhook-Signature)\n"},
		{name: "headers on stdin", stdin: string(lfOnly), args: []string{"--headers", "-", "--body", body, "--now", verifyNow}, valid: true, want: "valid ("},
		{name: "body on stdin", stdin: string(verifyBody), args: []string{"--headers", signed, "--body", "-", "--now", verifyNow}, valid: true, want: "valid ("},
		{name: "raw request, lowercase names", args: []string{"--headers", rawRequest, "--body", body, "--now", verifyNow}, valid: true, want: "valid ("},
		{name: "X-Webhook-Signature only", args: []string{"--headers", seedOnly, "--body", body, "--now", verifyNow}, valid: true,
			want: "valid (signed by the secret in $TOLLGATE_WEBHOOK_SECRET; X-Webhook-Signature)\n"},
		{name: "Standard Webhooks only", args: []string{"--headers", stdOnly, "--body", body, "--now", verifyNow}, valid: true,
			want: "valid (signed by the secret in $TOLLGATE_WEBHOOK_SECRET; Webhook-Signature)\n"},
		{name: "old, with a tolerance", args: []string{"--headers", signed, "--body", body, "--now", "2026-11-22T13:00:00Z", "--tolerance", "2h"}, valid: true, want: "valid ("},
		{name: "tampered body", args: []string{"--headers", signed, "--body", tampered, "--now", verifyNow}, want: "invalid: INVALID_SIGNATURE: whsig: invalid signature: no signature matches (check the secret"},
		{name: "secret that did not sign", env: []string{webhookSecretEnv + "=whsec_c2VjcmV0LXRoYXQtc2lnbnMtbm90aGluZy4uLg=="}, args: []string{"--headers", signed, "--body", body, "--now", verifyNow}, want: "invalid: INVALID_SIGNATURE"},
		{name: "old", args: []string{"--headers", signed, "--body", body, "--now", "2026-11-22T12:06:00Z"}, want: "out of tolerance: more than 5m0s from now (give --now"},
		{name: "now, much later", args: []string{"--headers", signed, "--body", body}, want: "INVALID_SIGNATURE: whsig: signature timestamp out of tolerance"},
		{name: "no signature", args: []string{"--headers", noSig, "--body", body, "--now", verifyNow}, want: "invalid: MISSING_SIGNATURE"},
		{name: "no secret", env: []string{}, args: []string{"--headers", signed, "--body", body}, want: "TOLLGATE_WEBHOOK_SECRET is not set"},
		{name: "not a secret", env: []string{webhookSecretEnv + "=whsec_c2hvcnQtc2VjcmV0"}, args: []string{"--headers", signed, "--body", body}, want: "the secret in $TOLLGATE_WEBHOOK_SECRET: whsig: invalid webhook secret: 12 bytes"},
		{name: "both on stdin", args: []string{"--headers", "-", "--body", "-"}, want: "--body and --headers cannot all be -"},
		{name: "bad now", args: []string{"--headers", signed, "--body", body, "--now", "yesterday"}, want: "--now \"yesterday\": want an RFC 3339 time"},
		{name: "bad tolerance", args: []string{"--headers", signed, "--body", body, "--tolerance", "-1s"}, want: "want a positive duration"},
		{name: "missing file", args: []string{"--headers", signed, "--body", body + ".missing"}, want: "no such file"},
		{name: "not headers", args: []string{"--headers", body, "--body", body}, want: "malformed MIME header"},
		{name: "no --body", args: []string{"--headers", signed}, want: `required flag(s) "body" not set`},
		{name: "secret env and file", args: []string{"--secret-env", "X", "--secret-file", secretFile, "--headers", signed, "--body", body}, want: "none of the others can be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := env
			if tt.env != nil {
				environ = tt.env
			}
			out, err := verifyRun(t, environ, tt.stdin, append([]string{"webhook"}, tt.args...)...)
			if tt.valid {
				if err != nil || !strings.HasPrefix(out, tt.want) {
					t.Fatalf("err %v, output %q; want %q", err, out, tt.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, output %q; want an error saying %q", err, out, tt.want)
			}
			all := out
			if err != nil {
				all += err.Error()
			}
			for _, s := range []string{verifyNewSecret, verifyOldSecret, "c2VjcmV0LXRoYXQtc2lnbnMtbm90aGluZy4uLg", "c2hvcnQtc2VjcmV0"} {
				if strings.Contains(all, strings.TrimPrefix(s, "whsec_")) {
					t.Errorf("the output shows a secret: %q", all)
				}
			}
		})
	}
}

// whsigHeader returns the header name of a delivery of body signed at ts.
func whsigHeader(t *testing.T, ts time.Time, body []byte, secret, name string) string {
	t.Helper()
	k, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := whsig.Sign("msg_verify1", ts, body, k)
	if err != nil {
		t.Fatal(err)
	}
	return h.Get(name)
}

// memKeys is an in-memory respsign.KeyStore.
type memKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (m *memKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

func (m *memKeys) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id && m.keys[i].RetiredAt.IsZero() {
			m.keys[i].RetiredAt = at
		}
	}
	return nil
}

func (m *memKeys) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = slices.DeleteFunc(m.keys, func(k store.SigningKey) bool { return k.ID == id })
	return nil
}

// signingServer publishes the keys of a new keyring and signs the responses
// of /hello; /events is streamed, unsigned.
func signingServer(t *testing.T) (*httptest.Server, *respsign.Keyring, *clock.Fake) {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{9}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(verifyTime)
	ring, err := respsign.LoadKeyring(context.Background(), &memKeys{}, box, clk)
	if err != nil {
		t.Fatal(err)
	}
	api := http.NewServeMux()
	api.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"hello":"world"}`)
	})
	api.HandleFunc("/events", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
	})
	mux := http.NewServeMux()
	mux.Handle(respsign.WellKnownPath, ring)
	mux.Handle("/", (&respsign.Middleware{Keyring: ring}).Wrap(api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ring, clk
}

// fetchSaved gets url as curl -sD headers -o body would, and returns the
// two files and the response.
func fetchSaved(t *testing.T, url string) (headers, body string, resp *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "headers", headerFile(resp.Header, "HTTP/1.1 "+resp.Status)), writeTemp(t, "body", b), resp
}

func TestVerifyResponse(t *testing.T) {
	srv, ring, clk := signingServer(t)
	oldKey := ring.ActiveKeyID()
	oldPEM := writeTemp(t, "old.pem", ring.PublicKeyPEM())
	oldHeaders, body, resp := fetchSaved(t, srv.URL+"/hello")
	oldSig := resp.Header.Get(respsign.HeaderSignature)

	clk.Advance(time.Hour)
	newKey, _, err := ring.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	newPEM := writeTemp(t, "new.pem", ring.PublicKeyPEM())
	newHeaders, newBody, resp := fetchSaved(t, srv.URL+"/hello")
	newSig := resp.Header.Get(respsign.HeaderSignature)
	if resp.Header.Get(respsign.HeaderKeyID) != newKey {
		t.Fatalf("signed by %s, want %s", resp.Header.Get(respsign.HeaderKeyID), newKey)
	}
	unsigned, eventsBody, _ := fetchSaved(t, srv.URL+"/events")
	tampered := writeTemp(t, "tampered", []byte(`{"hello":"World"}`))
	noSig := writeTemp(t, "nosig", []byte("HTTP/1.1 200 OK\nContent-Type: text/plain\n\n"))
	badStatus := writeTemp(t, "badstatus", []byte("X-Signature-Status: unsigned; reason=\"rouge \u202e\"\n"))

	ctlStatus := writeTemp(t, "ctlstatus", []byte("X-Signature-Status: unsigned; reason=\"\x1b[31mred\"\n"))

	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string // the output if valid, or what the error says
		valid bool
	}{
		{name: "PEM", args: []string{"--key", oldPEM, "--signature", oldSig, "--body", body}, valid: true,
			want: "valid (signed by the key in " + oldPEM + ")\n"},
		{name: "PEM, headers file", args: []string{"--key", newPEM, "--headers", newHeaders, "--body", newBody}, valid: true, want: "valid ("},
		{name: "PEM on stdin", stdin: string(ring.PublicKeyPEM()), args: []string{"--key", "-", "--signature", newSig, "--body", newBody}, valid: true, want: "valid ("},
		{name: "body on stdin", stdin: `{"hello":"world"}`, args: []string{"--key", newPEM, "--signature", newSig, "--body", "-"}, valid: true, want: "valid ("},
		{name: "URL, key ID", args: []string{"--url", srv.URL, "--key-id", oldKey, "--signature", oldSig, "--body", body}, valid: true,
			want: "valid (signed by key " + oldKey + " published at " + srv.URL + "/.well-known/response-signing-key)\n"},
		{name: "URL, current key", args: []string{"--url", srv.URL + "/", "--signature", newSig, "--body", body}, valid: true,
			want: "valid (signed by the current key " + newKey + " published at " + srv.URL + "/.well-known/response-signing-key)\n"},
		{name: "URL, headers of the retired key", args: []string{"--url", srv.URL, "--headers", oldHeaders, "--body", body}, valid: true,
			want: "valid (signed by key " + oldKey},
		{name: "URL, headers of the new key", args: []string{"--url", srv.URL, "--headers", newHeaders, "--body", body}, valid: true,
			want: "valid (signed by key " + newKey},
		{name: "old PEM, new signature", args: []string{"--key", oldPEM, "--signature", newSig, "--body", body}, want: "invalid: respsign: invalid signature"},
		{name: "tampered, PEM", args: []string{"--key", newPEM, "--signature", newSig, "--body", tampered}, want: "invalid: respsign: invalid signature: signature does not match"},
		{name: "tampered, URL", args: []string{"--url", srv.URL, "--headers", newHeaders, "--body", tampered}, want: "invalid: respsign: invalid signature"},
		{name: "URL, current key, old signature", args: []string{"--url", srv.URL, "--signature", oldSig, "--body", body}, want: "invalid:"},
		{name: "unknown key ID", args: []string{"--url", srv.URL, "--key-id", "sig_unknown", "--signature", newSig, "--body", body}, want: `unknown response signing key: key "sig_unknown" is not published`},
		{name: "unsigned response", args: []string{"--url", srv.URL, "--headers", unsigned, "--body", eventsBody}, want: `invalid: the response is not signed: X-Signature-Status: unsigned; reason="streamed"`},
		{name: "no signature header", args: []string{"--key", newPEM, "--headers", noSig, "--body", body}, want: "invalid: the response is not signed: no X-Signature header"},
		{name: "status with non-ASCII characters", args: []string{"--key", newPEM, "--headers", badStatus, "--body", body}, want: `X-Signature-Status: "unsigned; reason=\"rouge \u202e\""`},
		{name: "status with control characters", args: []string{"--key", newPEM, "--headers", ctlStatus, "--body", body}, want: "malformed MIME header line"},
		{name: "not base64", args: []string{"--key", newPEM, "--signature", "not base64!", "--body", body}, want: "invalid: respsign: invalid signature: not standard base64"},
		{name: "not a PEM", args: []string{"--key", body, "--signature", newSig, "--body", body}, want: "--key " + body + ": respsign: invalid public key"},
		{name: "no signature", args: []string{"--key", newPEM, "--body", body}, want: "give the X-Signature value with --signature"},
		{name: "no key", args: []string{"--signature", newSig, "--body", body}, want: "at least one of the flags in the group [key url] is required"},
		{name: "key and URL", args: []string{"--key", newPEM, "--url", srv.URL, "--signature", newSig, "--body", body}, want: "none of the others can be"},
		{name: "key and key ID", args: []string{"--key", newPEM, "--key-id", newKey, "--signature", newSig, "--body", body}, want: "none of the others can be"},
		{name: "URL not found", args: []string{"--url", srv.URL + "/nothing", "--signature", newSig, "--body", body}, want: "404"},
		{name: "URL not absolute", args: []string{"--url", "api.example.com", "--signature", newSig, "--body", body}, want: "want an absolute https URL"},
		{name: "all on stdin", args: []string{"--key", "-", "--body", "-", "--signature", newSig}, want: "--body and --key cannot all be -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := verifyRun(t, nil, tt.stdin, append([]string{"response"}, tt.args...)...)
			if tt.valid {
				if err != nil || !strings.HasPrefix(out, tt.want) {
					t.Fatalf("err %v, output %q; want %q", err, out, tt.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, output %q; want an error saying %q", err, out, tt.want)
			}
		})
	}
}

func TestParseHeaderLines(t *testing.T) {
	tests := []struct {
		name, in string
		want     http.Header
		err      bool
	}{
		{name: "empty", in: "", want: http.Header{}},
		{name: "LF", in: "A: 1\nb-c: 2\n", want: http.Header{"A": {"1"}, "B-C": {"2"}}},
		{name: "CRLF, no final line end", in: "A: 1\r\nA: 2", want: http.Header{"A": {"1", "2"}}},
		{name: "request line", in: "POST /x HTTP/1.1\r\nA: 1\r\n\r\nbody: no\r\n", want: http.Header{"A": {"1"}}},
		{name: "status line", in: "HTTP/2 200\nx-signature: abc=\n", want: http.Header{"X-Signature": {"abc="}}},
		{name: "BOM", in: "\xef\xbb\xbfA: 1\n", want: http.Header{"A": {"1"}}},
		{name: "value with colons and spaces", in: "A:  t=1,v1=a b:c  \n", want: http.Header{"A": {"t=1,v1=a b:c"}}},
		{name: "not a header", in: "hello world\n", err: true},
		{name: "continuation first", in: " A: 1\n", err: true},
		{name: "control character", in: "A: \x1b[31m\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHeaderLines([]byte(tt.in))
			if tt.err {
				if err == nil {
					t.Fatalf("parsed %v, want an error", h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(h) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", h, tt.want)
			}
		})
	}
}

func FuzzParseHeaderLines(f *testing.F) {
	f.Add([]byte("POST /x HTTP/1.1\r\nWebhook-Id: msg_1\r\n\r\n"))
	f.Add([]byte("HTTP/2 200\nx-signature: abc=\n x\n"))
	f.Add([]byte("\xef\xbb\xbf:\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := parseHeaderLines(raw)
		if err == nil && h == nil {
			t.Fatal("nil header without an error")
		}
	})
}

// TestWebhookVerifyAlias: "tollgate webhook verify" is "tollgate verify
// webhook".
func TestWebhookVerifyAlias(t *testing.T) {
	headers := writeTemp(t, "headers", deliveryHeaders(t, verifyTime, verifyBody, verifyOldSecret))
	body := writeTemp(t, "body", verifyBody)
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, []string{"HOME=/nonexistent", webhookSecretEnv + "=" + verifyOldSecret})
	root.SetArgs([]string{"webhook", "verify", "--headers", headers, "--body", body, "--now", verifyNow})
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.HasPrefix(out.String(), "valid (") {
		t.Fatalf("webhook verify: %v, %q %q", err, out.String(), errOut.String())
	}
	tampered := writeTemp(t, "tampered", append([]byte("x"), verifyBody...))
	root = newRoot(&out, &errOut, []string{"HOME=/nonexistent", webhookSecretEnv + "=" + verifyOldSecret})
	root.SetArgs([]string{"webhook", "verify", "--headers", headers, "--body", tampered, "--now", verifyNow})
	if err := root.ExecuteContext(context.Background()); err == nil {
		t.Fatal("a tampered body verified")
	}
}
