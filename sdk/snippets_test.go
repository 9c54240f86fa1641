package sdk_test

// The receiver snippets of docs/snippets are programs users copy; these
// tests run each of them, with Node.js and Python, on signatures made by the
// Go code that Tollgate runs (whsig.Sign and a respsign.Keyring).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/whsig"
)

// snippetTool returns the path of the interpreter name. Without it the
// snippets it runs are skipped, except in CI, where they are required.
func snippetTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (%v): CI requires it to run the receiver snippets of docs/snippets", name, err)
		}
		t.Skipf("%s not found (%v): skipping the receiver snippets of docs/snippets it runs", name, err)
	}
	return path
}

// snippetRunner runs one snippet of docs/snippets with its interpreter.
type snippetRunner struct {
	tool, script string
}

// snippetRunners returns a runner of the script name.js with node and one of
// name.py with python3, skipping (or failing, in CI) those whose interpreter
// is missing.
func snippetRunners(t *testing.T, name string) map[string]snippetRunner {
	t.Helper()
	runners := map[string]snippetRunner{}
	for _, l := range []struct{ tool, ext string }{{"node", ".js"}, {"python3", ".py"}} {
		script, err := filepath.Abs(filepath.Join("..", "docs", "snippets", name+l.ext))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(script); err != nil {
			t.Fatal(err)
		}
		t.Run(l.tool+" available", func(t *testing.T) {
			runners[l.tool] = snippetRunner{tool: snippetTool(t, l.tool), script: script}
		})
	}
	return runners
}

// run runs the snippet with args and the environment variables env (and
// nothing else of the test's environment but PATH), and returns its exit
// code and output.
func (r snippetRunner) run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.tool, append([]string{r.script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("%s %s: %v", r.tool, r.script, err)
	}
	return code, out.String(), errOut.String()
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// headerLines writes h as "Name: value" lines, after first if not "".
func headerLines(h http.Header, first string, lower bool) []byte {
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
		name := k
		if lower {
			name = strings.ToLower(k)
		}
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	return b.Bytes()
}

func TestSnippetsVerifyWebhook(t *testing.T) {
	runners := snippetRunners(t, "verify_webhook")
	now := time.Now()
	signed := func(ts time.Time, body []byte, secrets ...string) http.Header {
		return whSign(t, ts, body, secrets...)
	}
	without := func(h http.Header, names ...string) http.Header {
		for _, n := range names {
			h.Del(n)
		}
		return h
	}
	with := func(h http.Header, name, value string) http.Header {
		h.Set(name, value)
		return h
	}
	seedOnly := []string{whsig.HeaderStandardSignature, whsig.HeaderID, whsig.HeaderTimestamp}

	tests := []struct {
		name      string
		secret    string
		h         http.Header
		body      []byte // whBody if nil
		firstLine string
		lower     bool
		wantCode  string // "" for valid
	}{
		{name: "both headers, new secret", secret: whNewSecret, h: signed(now, whBody, whNewSecret, whOldSecret)},
		{name: "both headers, old secret", secret: whOldSecret, h: signed(now, whBody, whNewSecret, whOldSecret)},
		{name: "X-Webhook-Signature only", secret: whOldSecret, h: without(signed(now, whBody, whNewSecret, whOldSecret), seedOnly...)},
		{name: "Standard Webhooks only", secret: whOldSecret, h: without(signed(now, whBody, whNewSecret, whOldSecret), whsig.HeaderSignature)},
		{name: "request line, lowercase names", secret: whNewSecret, h: signed(now, whBody, whNewSecret), firstLine: "POST /hooks/tollgate HTTP/1.1", lower: true},
		{name: "4 minutes old", secret: whNewSecret, h: signed(now.Add(-4*time.Minute), whBody, whNewSecret)},
		{name: "empty body", secret: whNewSecret, h: signed(now, []byte{}, whNewSecret), body: []byte{}},
		{name: "tampered body", secret: whNewSecret, h: signed(now, whBody, whNewSecret), body: bytes.Replace(whBody, []byte(`"n":1`), []byte(`"n":2`), 1), wantCode: "INVALID_SIGNATURE"},
		{name: "trailing newline", secret: whNewSecret, h: signed(now, whBody, whNewSecret), body: append(bytes.Clone(whBody), '\n'), wantCode: "INVALID_SIGNATURE"},
		{name: "tampered body, X-Webhook-Signature only", secret: whNewSecret, h: without(signed(now, whBody, whNewSecret), seedOnly...), body: []byte(`{}`), wantCode: "INVALID_SIGNATURE"},
		{name: "tampered body, Standard Webhooks only", secret: whNewSecret, h: without(signed(now, whBody, whNewSecret), whsig.HeaderSignature), body: []byte(`{}`), wantCode: "INVALID_SIGNATURE"},
		{name: "a secret that did not sign", secret: whOtherSecret, h: signed(now, whBody, whNewSecret, whOldSecret), wantCode: "INVALID_SIGNATURE"},
		{name: "10 minutes old", secret: whNewSecret, h: signed(now.Add(-10*time.Minute), whBody, whNewSecret), wantCode: "INVALID_SIGNATURE"},
		{name: "10 minutes ahead", secret: whNewSecret, h: signed(now.Add(10*time.Minute), whBody, whNewSecret), wantCode: "INVALID_SIGNATURE"},
		{name: "webhook-id changed", secret: whNewSecret, h: with(signed(now, whBody, whNewSecret), whsig.HeaderID, "msg_other"), wantCode: "INVALID_SIGNATURE"},
		{name: "X-Webhook-Signature timestamp changed", secret: whNewSecret, h: with(signed(now, whBody, whNewSecret), whsig.HeaderSignature,
			strings.Replace(signed(now, whBody, whNewSecret).Get(whsig.HeaderSignature), "t=", "t=1", 1)), wantCode: "INVALID_SIGNATURE"},
		{name: "no signature headers", secret: whNewSecret, h: without(signed(now, whBody, whNewSecret), whsig.HeaderSignature, whsig.HeaderStandardSignature), wantCode: "MISSING_SIGNATURE"},
		{name: "no headers", secret: whNewSecret, h: http.Header{}, wantCode: "MISSING_SIGNATURE"},
	}
	for lang, r := range runners {
		t.Run(lang, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					dir := t.TempDir()
					body := tt.body
					if body == nil {
						body = whBody
					}
					headersFile := writeFile(t, dir, "headers", headerLines(tt.h, tt.firstLine, tt.lower))
					bodyFile := writeFile(t, dir, "body", body)
					code, out, errOut := r.run(t, []string{"TOLLGATE_WEBHOOK_SECRET=" + tt.secret}, headersFile, bodyFile)
					switch {
					case tt.wantCode == "" && (code != 0 || out != "valid\n"):
						t.Errorf("exit %d, %q %q; want 0, valid", code, out, errOut)
					case tt.wantCode != "" && (code != 1 || !strings.HasPrefix(out, "invalid: "+tt.wantCode+": ")):
						t.Errorf("exit %d, %q %q; want 1, invalid: %s", code, out, errOut, tt.wantCode)
					}
					if strings.Contains(out+errOut, strings.TrimPrefix(tt.secret, "whsec_")) {
						t.Errorf("output shows the secret: %q %q", out, errOut)
					}
				})
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		for lang, r := range runners {
			if code, _, _ := r.run(t, nil, "headers", "body"); code != 2 {
				t.Errorf("%s without a secret: exit %d, want 2", lang, code)
			}
		}
	})
}

// compressedPEM returns the PEM of the key of pemKey with its point
// compressed, as OpenSSL can write it.
func compressedPEM(t *testing.T, pemKey []byte) []byte {
	t.Helper()
	pub, err := respsign.ParsePublicKeyPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	der := append([]byte{
		0x30, 0x36, 0x30, 0x10,
		0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a,
		0x03, 0x22, 0x00,
	}, pub.SerializeCompressed()...)
	out := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if _, err := respsign.ParsePublicKeyPEM(out); err != nil {
		t.Fatalf("compressed PEM: %v", err)
	}
	return out
}

func TestSnippetsVerifyResponse(t *testing.T) {
	runners := snippetRunners(t, "verify_response")
	ring := newResponseKeyring(t, newFakeClock())
	other := newResponseKeyring(t, newFakeClock())
	body := []byte(`{"data":"Example payload","n":[1,2,3],"s":"é"}`)
	large := bytes.Repeat([]byte(`{"k":"v"},`), 10000)
	_, sig := ring.Sign(body)
	_, emptySig := ring.Sign(nil)
	_, largeSig := ring.Sign(large)
	pemKey := ring.PublicKeyPEM()
	plusN := func(v *big.Int) *big.Int { return new(big.Int).Add(v, secp256k1N) }

	tests := []struct {
		name  string
		pem   []byte
		body  []byte
		sig   string
		valid bool
	}{
		{name: "valid", pem: pemKey, body: body, sig: sig, valid: true},
		{name: "valid, high S", pem: pemKey, body: body, sig: highS(t, sig), valid: true},
		{name: "valid, compressed key", pem: compressedPEM(t, pemKey), body: body, sig: sig, valid: true},
		{name: "valid, empty body", pem: pemKey, body: []byte{}, sig: emptySig, valid: true},
		{name: "valid, 100 kB body", pem: pemKey, body: large, sig: largeSig, valid: true},
		{name: "tampered body", pem: pemKey, body: bytes.Replace(body, []byte("1,2"), []byte("1,4"), 1), sig: sig},
		{name: "trailing newline", pem: pemKey, body: append(bytes.Clone(body), '\n'), sig: sig},
		{name: "another key", pem: other.PublicKeyPEM(), body: body, sig: sig},
		{name: "signature of another body", pem: pemKey, body: body, sig: emptySig},
		{name: "r + n", pem: pemKey, body: body, sig: derSignature(t, sig, func(r, s *big.Int) (*big.Int, *big.Int) { return plusN(r), s })},
		{name: "s + n", pem: pemKey, body: body, sig: derSignature(t, sig, func(r, s *big.Int) (*big.Int, *big.Int) { return r, plusN(s) })},
		{name: "s = 0", pem: pemKey, body: body, sig: derSignature(t, sig, func(r, _ *big.Int) (*big.Int, *big.Int) { return r, big.NewInt(0) })},
		{name: "r = 0", pem: pemKey, body: body, sig: derSignature(t, sig, func(_, s *big.Int) (*big.Int, *big.Int) { return big.NewInt(0), s })},
		{name: "truncated DER", pem: pemKey, body: body, sig: func() string {
			der, _ := base64.StdEncoding.DecodeString(sig)
			return base64.StdEncoding.EncodeToString(der[:len(der)-1])
		}()},
		{name: "not a signature", pem: pemKey, body: body, sig: "AAAA"},
	}
	for lang, r := range runners {
		t.Run(lang, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					dir := t.TempDir()
					pemFile := writeFile(t, dir, "key.pem", tt.pem)
					bodyFile := writeFile(t, dir, "body", tt.body)
					code, out, errOut := r.run(t, nil, pemFile, bodyFile, tt.sig)
					switch {
					case tt.valid && (code != 0 || out != "valid\n"):
						t.Errorf("exit %d, %q %q; want 0, valid", code, out, errOut)
					case !tt.valid && (code != 1 || !strings.HasPrefix(out, "invalid: ")):
						t.Errorf("exit %d, %q %q; want 1, invalid", code, out, errOut)
					}
				})
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		for lang, r := range runners {
			if code, _, _ := r.run(t, nil, "key.pem"); code != 2 {
				t.Errorf("%s with one argument: exit %d, want 2", lang, code)
			}
		}
	})
}
