package respsign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// node returns the path of Node.js. Without it the independent verification
// is skipped, except in CI, where it is required.
func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node not found (%v): CI requires Node.js for the independent verification of response signatures", err)
		}
		t.Skipf("node not found (%v): skipping the independent verification of response signatures with Node.js", err)
	}
	return path
}

// nodeCase is a signed body for testdata/verify.js.
type nodeCase struct {
	Name      string `json:"name"`
	PEM       string `json:"pem"`
	JWK       JWK    `json:"jwk"`
	BodyFile  string `json:"body_file"`
	Signature string `json:"signature"`

	body []byte
	want bool
}

type nodeResult struct {
	Name       string `json:"name"`
	Seed       bool   `json:"seed"`
	SeedString bool   `json:"seed_string"`
	SHA256     bool   `json:"sha256"`
	JWK        bool   `json:"jwk"`
}

// runNode runs a script of testdata with arguments and decodes its output.
func runNode(t *testing.T, script string, out any, args ...string) {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node(t), append([]string{abs}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("node %s output: %v\n%s", script, err, stdout)
	}
}

// verifyWithNode has testdata/verify.js check every case, each given the
// PEM and JWK published for its key, and compares with what is wanted.
func verifyWithNode(t *testing.T, cases []nodeCase) {
	t.Helper()
	dir := t.TempDir()
	for i := range cases {
		cases[i].BodyFile = filepath.Join(dir, fmt.Sprintf("body%d", i))
		if err := os.WriteFile(cases[i].BodyFile, cases[i].body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	input := filepath.Join(dir, "cases.json")
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var results []nodeResult
	runNode(t, "verify.js", &results, input)
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(results), len(cases))
	}
	for i, r := range results {
		c := cases[i]
		wantString := c.want && utf8.Valid(c.body) // a string holds UTF-8 only
		if r.Seed != c.want || r.SHA256 != c.want || r.JWK != c.want || r.SeedString != wantString {
			t.Errorf("%s: node says %+v; want %v (string: %v)", c.Name, r, c.want, wantString)
		}
	}
}

// caseFor makes the case of a body signed with kid, the PEM and JWK taken
// from the Document, and its tampered twin.
func casesFor(t *testing.T, d Document, name string, body []byte, kid, sig string) []nodeCase {
	t.Helper()
	var key *PublishedKey
	for i := range d.Keys {
		if d.Keys[i].KID == kid {
			key = &d.Keys[i]
		}
	}
	if key == nil {
		t.Fatalf("%s: key %s not published", name, kid)
	}
	tampered := append(bytes.Clone(body), ' ')
	if len(body) > 0 {
		tampered = bytes.Clone(body)
		tampered[len(tampered)/2] ^= 0x01
	}
	return []nodeCase{
		{Name: name, PEM: key.PEM, JWK: key.JWK, Signature: sig, body: body, want: true},
		{Name: name + " (tampered)", PEM: key.PEM, JWK: key.JWK, Signature: sig, body: tampered, want: false},
	}
}

var nodeBodies = []struct {
	name string
	body []byte
}{
	{"JSON", []byte(`{"data":"Example payload","amount":"1.5","list":[1,2,3]}`)},
	{"empty", []byte{}},
	{"UTF-8", []byte("{\"name\":\"Zoë Ångström\",\"note\":\"価格 \u20ac \U0001F680\"}\n")},
	{"binary", []byte{0xff, 0xfe, 0x00, 0x80, 'x', 0xc3}},
	{"large", bodyOf(256 << 10)},
}

// TestNodeVerifiesSignatures checks signatures with Node.js, as the
// README's clients do: its snippet (createVerify('RSA-SHA256')), the digest
// named SHA256, and the JWK; with the keyring's keys before and after a
// rotation, and the golden signatures.
func TestNodeVerifiesSignatures(t *testing.T) {
	node(t)
	ctx := context.Background()
	k, _, clk := sqliteRing(t)
	var cases []nodeCase
	type signed struct{ name, kid, sig string }
	var before []signed
	for _, b := range nodeBodies {
		kid, sig := k.Sign(b.body)
		before = append(before, signed{b.name, kid, sig})
	}
	clk.Advance(time.Minute)
	if _, _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	d := document(t, k)
	for i, b := range nodeBodies {
		cases = append(cases, casesFor(t, d, b.name+" by the retired key", b.body, before[i].kid, before[i].sig)...)
		kid, sig := k.Sign(b.body)
		cases = append(cases, casesFor(t, d, b.name, b.body, kid, sig)...)
	}
	// A signature checked with the other key fails.
	wrong := casesFor(t, d, "JSON", nodeBodies[0].body, before[0].kid, before[0].sig)[0]
	wrong.Name, wrong.PEM, wrong.JWK, wrong.want = "JSON with the other key", d.Keys[1].PEM, d.Keys[1].JWK, false
	cases = append(cases, wrong)

	golden, _ := plantedRing(t, clk,
		planted("sig_golden0000000000000000000b", fixedKey("respsign golden 1"), t0, time.Time{}))
	gd := document(t, golden)
	for _, b := range goldenBodies {
		kid, sig := golden.Sign([]byte(b))
		cases = append(cases, casesFor(t, gd, fmt.Sprintf("golden %q", b), []byte(b), kid, sig)...)
	}
	verifyWithNode(t, cases)
}

// TestNodeVerifiesResponses checks, with Node.js, responses as an HTTP
// client receives them from the Middleware, against the key published by
// the same server.
func TestNodeVerifiesResponses(t *testing.T) {
	node(t)
	k, _, _ := sqliteRing(t)
	mux := http.NewServeMux()
	mux.Handle("GET "+WellKnownPath, k)
	for _, b := range nodeBodies {
		mux.HandleFunc("GET /"+b.name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write(b.body)
		})
	}
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"NOT_FOUND"}}`, http.StatusNotFound)
	})
	srv := httptest.NewServer((&Middleware{Keyring: k}).Wrap(mux))
	defer srv.Close()

	// The client fetches the key as a client would; the publication is
	// itself signed.
	pub := fetch(t, "GET", srv.URL+WellKnownPath)
	var d Document
	if err := json.Unmarshal(pub.body, &d); err != nil {
		t.Fatal(err)
	}
	checkSigned(t, d, pub)
	var cases []nodeCase
	for _, name := range []string{"JSON", "empty", "UTF-8", "binary", "large", "missing"} {
		r := fetch(t, "GET", srv.URL+"/"+name)
		checkSigned(t, d, r)
		cases = append(cases, casesFor(t, d, name+" response", r.body, r.Header.Get(HeaderKeyID), r.Header.Get(HeaderSignature))...)
	}
	cases = append(cases, casesFor(t, d, "publication", pub.body, pub.Header.Get(HeaderKeyID), pub.Header.Get(HeaderSignature))...)
	verifyWithNode(t, cases)

	// The PEM alone, as served, is the one Node was given.
	r := fetch(t, "GET", srv.URL+WellKnownPath+"?format=pem")
	if r.Header.Get("Content-Type") != PEMContentType || string(r.body) != d.Keys[0].PEM {
		t.Fatalf("PEM: %v\n%s", r.Header, r.body)
	}
}

// TestNodeSignaturesVerify checks the Go verifier and key parsers against
// keys and signatures made by Node.js (OpenSSL), which, unlike Sign, may
// have a high s.
func TestNodeSignaturesVerify(t *testing.T) {
	node(t)
	dir := t.TempDir()
	var files []string
	for i, b := range nodeBodies {
		f := filepath.Join(dir, fmt.Sprintf("body%d", i))
		if err := os.WriteFile(f, b.body, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	list, _ := json.Marshal(files)
	input := filepath.Join(dir, "bodies.json")
	if err := os.WriteFile(input, list, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var out struct {
			PEM        string          `json:"pem"`
			JWK        json.RawMessage `json:"jwk"`
			Signatures []string        `json:"signatures"`
		}
		runNode(t, "sign.js", &out, input)
		pub, err := ParsePublicKeyPEM([]byte(out.PEM))
		if err != nil {
			t.Fatalf("Node's PEM: %v\n%s", err, out.PEM)
		}
		jpub, err := ParseJWK(out.JWK)
		if err != nil || !jpub.IsEqual(pub) {
			t.Fatalf("Node's JWK: %v\n%s", err, out.JWK)
		}
		if got := string(MarshalPublicKeyPEM(pub)); got != out.PEM {
			t.Fatalf("PEM differs from Node's:\n%s\n%s", got, out.PEM)
		}
		for i, b := range nodeBodies {
			if err := Verify(pub, b.body, out.Signatures[i]); err != nil {
				t.Errorf("%s: Node's signature: %v", b.name, err)
			}
			if err := Verify(pub, append(bytes.Clone(b.body), 0), out.Signatures[i]); err == nil {
				t.Errorf("%s: Node's signature verifies for another body", b.name)
			}
		}
	}
}
