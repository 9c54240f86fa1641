package siwx

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
)

// hdr returns the named SIGN-IN-WITH-X header of testdata/tokens.json and
// the message it signs.
func hdr(t testing.TB, name string) (header, text string) {
	t.Helper()
	f, _ := loadTokens(t)
	for _, h := range f.Headers {
		if h.Name == name {
			return h.Header, h.Message
		}
	}
	t.Fatalf("no header %q in testdata/tokens.json", name)
	return "", ""
}

var (
	hdrIssued = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	hdrT      = hdrIssued.Add(2 * time.Minute)
)

// TestVerifyHeader verifies proofs signed by ethers and tweetnacl, their
// message built by the generator from the fields as x402 clients build it.
func TestVerifyHeader(t *testing.T) {
	evm0 := "eip155:" + mustTokens(t).EVMAddresses[0]
	sol0 := "solana:" + mustTokens(t).SolanaAddresses[0]
	for _, tc := range []struct {
		name    string
		at      time.Time
		wallet  string
		expires time.Time
		err     error
	}{
		{"hdr_evm", hdrT, evm0, hdrIssued.Add(5 * time.Minute), nil},
		{"hdr_evm_no_expiry", hdrT, evm0, hdrIssued.Add(5 * time.Minute), nil},
		{"hdr_evm_long", hdrT, evm0, hdrIssued.Add(5 * time.Minute), nil},
		{"hdr_evm_minimal", hdrT, evm0, hdrIssued.Add(5 * time.Minute), nil},
		{"hdr_solana", hdrT, sol0, hdrIssued.Add(5 * time.Minute), nil},
		{"hdr_evm", hdrIssued.Add(5 * time.Minute), "", time.Time{}, ErrExpired},
		{"hdr_evm_long", hdrIssued.Add(6 * time.Minute), "", time.Time{}, ErrExpired},
		{"hdr_evm_no_expiry", hdrIssued.Add(5 * time.Minute), "", time.Time{}, ErrExpired},
		{"hdr_evm", hdrIssued.Add(-2 * time.Minute), "", time.Time{}, ErrMalformed}, // issued in the future
		{"hdr_evm_tampered", hdrT, "", time.Time{}, ErrSignature},
		{"hdr_solana_tampered", hdrT, "", time.Time{}, ErrSignature},
		{"hdr_evm_wrong_domain", hdrT, "", time.Time{}, ErrMalformed},
		{"hdr_evm_smart_wallet", hdrT, "", time.Time{}, ErrMalformed},
		{"hdr_evm_wrong_type", hdrT, "", time.Time{}, ErrMalformed},
	} {
		t.Run(tc.name+"@"+tc.at.Format("15:04"), func(t *testing.T) {
			h, _ := hdr(t, tc.name)
			v, err := New(testConfig(clock.NewFake(tc.at)))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second answer comes from the cache
				w, exp, err := v.VerifyHeader(h)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("err = %v, want %v", err, tc.err)
					}
					continue
				}
				if err != nil || w.Account() != tc.wallet || !exp.Equal(tc.expires) {
					t.Fatalf("VerifyHeader = %v, %v, %v; want %s, %v", w, exp, err, tc.wallet, tc.expires)
				}
			}
		})
	}
}

func mustTokens(t testing.TB) tokenFile {
	f, _ := loadTokens(t)
	return f
}

// TestParseHeaderMessage checks that the message rebuilt from a proof is
// the text the independent client signed, byte for byte (".000Z" times
// included).
func TestParseHeaderMessage(t *testing.T) {
	f := mustTokens(t)
	for _, h := range f.Headers {
		if strings.Contains(h.Name, "tampered") || strings.Contains(h.Name, "wrong_type") || strings.Contains(h.Name, "smart_wallet") {
			continue
		}
		tk, err := ParseHeader(h.Header)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if tk.Text != h.Message {
			t.Errorf("%s: text\n%q\nwant\n%q", h.Name, tk.Text, h.Message)
		}
	}
}

// TestProofEncode round-trips a proof through Encode and ParseHeader.
func TestProofEncode(t *testing.T) {
	h, text := hdr(t, "hdr_solana")
	raw, _ := base64.StdEncoding.DecodeString(h)
	var p Proof
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	tk, err := ParseHeader(p.Encode())
	if err != nil || tk.Text != text {
		t.Fatalf("ParseHeader(Encode()) = %q, %v", tk.Text, err)
	}
	v, _ := New(testConfig(clock.NewFake(hdrT)))
	if _, _, err := v.VerifyHeader(p.Encode()); err != nil {
		t.Fatal(err)
	}
}

// TestParseHeaderStrict refuses what is not exactly a proof.
func TestParseHeaderStrict(t *testing.T) {
	h, _ := hdr(t, "hdr_evm")
	raw, _ := base64.StdEncoding.DecodeString(h)
	var members map[string]any
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	with := func(edit func(map[string]any)) string {
		m := make(map[string]any, len(members))
		for k, v := range members {
			m[k] = v
		}
		edit(m)
		b, _ := json.Marshal(m)
		return base64.StdEncoding.EncodeToString(b)
	}
	for name, s := range map[string]string{
		"empty":           "",
		"not base64":      "!!!",
		"base64 with LF":  h[:10] + "\n" + h[10:],
		"not JSON":        base64.StdEncoding.EncodeToString([]byte("domain=x")),
		"trailing data":   base64.StdEncoding.EncodeToString(append(append([]byte{}, raw...), '}')),
		"two objects":     base64.StdEncoding.EncodeToString(append(append([]byte{}, raw...), raw...)),
		"unknown member":  with(func(m map[string]any) { m["admin"] = true }),
		"no signature":    with(func(m map[string]any) { delete(m, "signature") }),
		"no nonce":        with(func(m map[string]any) { delete(m, "nonce") }),
		"no issuedAt":     with(func(m map[string]any) { delete(m, "issuedAt") }),
		"bad issuedAt":    with(func(m map[string]any) { m["issuedAt"] = "yesterday" }),
		"bad chain":       with(func(m map[string]any) { m["chainId"] = "cosmos:hub" }),
		"chain no ref":    with(func(m map[string]any) { m["chainId"] = "eip155:" }),
		"chain not CAIP":  with(func(m map[string]any) { m["chainId"] = "8453" }),
		"short nonce":     with(func(m map[string]any) { m["nonce"] = "abc" }),
		"newline domain":  with(func(m map[string]any) { m["domain"] = "api.example.com\nURI: x" }),
		"newline stmt":    with(func(m map[string]any) { m["statement"] = "a\nb" }),
		"signature hex":   with(func(m map[string]any) { m["signature"] = "2d6a" }),
		"signature short": with(func(m map[string]any) { m["signature"] = "0x2d6a" }),
		"version 2":       with(func(m map[string]any) { m["version"] = 2 }),
		"too long":        strings.Repeat("A", MaxTokenLength+4),
	} {
		if _, err := ParseHeader(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestHeaderAndTokenCaches keeps a header and a token apart in the cache:
// the same bytes as a token are not a verified header.
func TestHeaderAndTokenCaches(t *testing.T) {
	h, _ := hdr(t, "hdr_evm")
	v, _ := New(testConfig(clock.NewFake(hdrT)))
	if _, _, err := v.VerifyHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(h); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a verified header passed as a token: %v", err)
	}
}
