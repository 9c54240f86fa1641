package siwx

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mr-tron/base58"
	"github.com/tollgate/tollgate/internal/clock"
)

func TestVerify(t *testing.T) {
	f, _ := loadTokens(t)
	evm0, evm1 := f.EVMAddresses[0], f.EVMAddresses[1]
	sol0, sol1 := f.SolanaAddresses[0], f.SolanaAddresses[1]
	exp := at("01:00:00")

	tests := []struct {
		token  string
		at     time.Time
		want   error  // nil, ErrMalformed, ErrSignature or ErrExpired
		reason string // in the error's text
		wallet Wallet
	}{
		{token: "evm", at: t0, wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_mainnet", at: t0, wallet: Wallet{"eip155:1", evm0}},
		{token: "evm_key1", at: t0, wallet: Wallet{"eip155:8453", evm1}},
		{token: "evm_base64url", at: t0, wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_scheme", at: t0, wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_full", at: t0, wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_offset", at: t0, wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_max_lifetime", at: t0, wallet: Wallet{"eip155:8453", evm0}},

		// Times. Issued 00:00, expires 01:00, skew 1 minute.
		{token: "evm", at: at("00:59:59"), wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm", at: at("01:00:00"), want: ErrExpired, reason: "2030-01-01T01:00:00Z"},
		{token: "evm", at: at("07:00:00"), want: ErrExpired},
		{token: "evm", at: time.Date(2029, 12, 31, 23, 59, 0, 0, time.UTC), wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm", at: time.Date(2029, 12, 31, 23, 58, 59, 0, time.UTC), want: ErrMalformed, reason: "issued in the future"},
		{token: "evm_offset", at: at("01:00:00"), want: ErrExpired},
		{token: "evm_issued_future", at: t0, want: ErrMalformed, reason: "issued in the future"},
		{token: "evm_issued_future", at: at("00:38:59"), want: ErrMalformed, reason: "issued in the future"},
		{token: "evm_issued_future", at: at("00:39:00"), wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_not_before", at: t0, want: ErrMalformed, reason: "not yet valid"},
		{token: "evm_not_before", at: at("00:43:59"), want: ErrMalformed, reason: "not yet valid"},
		{token: "evm_not_before", at: at("00:44:00"), wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_not_before", at: at("00:50:00"), wallet: Wallet{"eip155:8453", evm0}},
		{token: "evm_full", at: at("00:05:00"), want: ErrMalformed, reason: "not yet valid"},
		{token: "evm_long_lifetime", at: t0, want: ErrMalformed, reason: "lifetime 25h0m0s"},
		{token: "evm_expires_before_issued", at: t0, want: ErrMalformed, reason: "not after Issued At"},
		{token: "evm_no_expiry", at: t0, want: ErrMalformed, reason: "no Expiration Time"},

		// Not for this verifier.
		{token: "evm_wrong_domain", at: t0, want: ErrMalformed, reason: `domain "evil.example.com"`},
		{token: "evm_domain_port", at: t0, want: ErrMalformed, reason: `domain "api.example.com:443"`},
		{token: "evm_wrong_scheme", at: t0, want: ErrMalformed, reason: `scheme "http"`},
		{token: "evm_wrong_uri", at: t0, want: ErrMalformed, reason: "URI"},
		{token: "evm_uri_suffix", at: t0, want: ErrMalformed, reason: "URI"},
		{token: "evm_uri_userinfo", at: t0, want: ErrMalformed, reason: "URI"},
		{token: "evm_wrong_chain", at: t0, want: ErrMalformed, reason: `chain "eip155:10"`},
		{token: "solana_devnet", at: t0, want: ErrMalformed, reason: `chain "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"`},

		// Signers.
		{token: "evm_lowercase_address", at: t0, want: ErrMalformed, reason: "EIP-55"},
		{token: "evm_wrong_address", at: t0, want: ErrSignature, reason: "does not match"},
		{token: "solana_wrong_address", at: t0, want: ErrSignature, reason: "does not match"},

		{token: "solana", at: t0, wallet: Wallet{solanaMainnet, sol0}},
		{token: "solana_key1", at: t0, wallet: Wallet{solanaMainnet, sol1}},
		{token: "solana_base64url", at: t0, wallet: Wallet{solanaMainnet, sol0}},
		{token: "solana", at: at("01:00:00"), want: ErrExpired},
		{token: "solana_long_lifetime", at: t0, want: ErrMalformed, reason: "lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.token+"@"+tt.at.Format(time.RFC3339), func(t *testing.T) {
			v, fake := newTestVerifier(t, nil)
			fake.Set(tt.at)
			w, gotExp, err := v.Verify(tok(t, tt.token).token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if w != tt.wallet {
					t.Errorf("wallet = %+v, want %+v", w, tt.wallet)
				}
				if tt.token != "evm_issued_future" && tt.token != "evm_max_lifetime" && !gotExp.Equal(exp) {
					t.Errorf("expires %v, want %v", gotExp, exp)
				}
				return
			}
			checkErr(t, err, tt.want, tt.reason)
			if w != (Wallet{}) || !gotExp.IsZero() {
				t.Errorf("Verify returned %+v, %v with its error", w, gotExp)
			}
			if v.cache.len() != 0 {
				t.Error("a failure was cached")
			}
		})
	}
}

// checkErr checks that err wraps want, and none of the other sentinels, and
// that its text mentions reason.
func checkErr(t *testing.T, err, want error, reason string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	for _, other := range []error{ErrMalformed, ErrSignature, ErrExpired} {
		if !errors.Is(want, other) && errors.Is(err, other) {
			t.Errorf("error %v wraps %v too", err, other)
		}
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not mention %q", err, reason)
	}
}

// The example of EIP-4361, signed by ethers: as the EIP writes it, it has no
// Expiration Time, which this verifier requires.
func TestVerifyEIP4361Example(t *testing.T) {
	fake := clock.NewFake(time.Date(2021, 9, 30, 16, 30, 0, 0, time.UTC))
	v, err := New(Config{Domain: "example.com", URI: "https://example.com", Chains: []string{"eip155:1"}, Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = v.Verify(tok(t, "eip4361_example").token)
	checkErr(t, err, ErrMalformed, "no Expiration Time")

	f, _ := loadTokens(t)
	w, exp, err := v.Verify(tok(t, "eip4361_example_expiring").token)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Wallet{"eip155:1", f.EVMAddresses[0]}); w != want {
		t.Errorf("wallet %+v, want %+v", w, want)
	}
	if want := time.Date(2021, 9, 30, 17, 25, 24, 0, time.UTC); !exp.Equal(want) {
		t.Errorf("expires %v, want %v", exp, want)
	}
	fake.Set(exp)
	_, _, err = v.Verify(tok(t, "eip4361_example_expiring").token)
	checkErr(t, err, ErrExpired, "")
}

func TestVerifyTampered(t *testing.T) {
	evmTok, solTok := tok(t, "evm"), tok(t, "solana")
	evmB64, evmSig, _ := strings.Cut(evmTok.token, ".")
	solB64, solSig, _ := strings.Cut(solTok.token, ".")
	std := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	evmRaw, err := hex.DecodeString(evmSig[2:])
	if err != nil {
		t.Fatal(err)
	}
	evmFlip := func(i int) string {
		b := append([]byte(nil), evmRaw...)
		b[i] ^= 1
		return "0x" + hex.EncodeToString(b)
	}
	evmV := func(v byte) string {
		b := append([]byte(nil), evmRaw...)
		b[64] = v
		return "0x" + hex.EncodeToString(b)
	}
	solRaw, err := base58.Decode(solSig)
	if err != nil {
		t.Fatal(err)
	}
	solFlip := func(i int) string {
		b := append([]byte(nil), solRaw...)
		b[i] ^= 1
		return base58.Encode(b)
	}
	otherNonce := strings.Replace(evmTok.message, "Nonce: tollgate0123", "Nonce: tollgate0124", 1)
	otherSolNonce := strings.Replace(solTok.message, "Nonce: tollgate0123", "Nonce: tollgate0124", 1)

	tests := []struct {
		name, token string
		want        error
		reason      string
	}{
		{"EVM: r tampered", evmB64 + "." + evmFlip(3), ErrSignature, ""},
		{"EVM: s tampered", evmB64 + "." + evmFlip(40), ErrSignature, ""},
		{"EVM: v flipped", evmB64 + "." + evmV(evmRaw[64]^1), ErrSignature, ""},
		{"EVM: v out of range", evmB64 + "." + evmV(29), ErrSignature, "v must be"},
		{"EVM: message tampered", std(otherNonce) + "." + evmSig, ErrSignature, ""},
		{"EVM: hex in upper case", evmB64 + ".0x" + strings.ToUpper(evmSig[2:]), nil, ""},
		{"EVM: v as 0 or 1", evmB64 + "." + evmV(evmRaw[64]-27), nil, ""},
		{"Solana: R tampered", solB64 + "." + solFlip(3), ErrSignature, ""},
		{"Solana: S tampered", solB64 + "." + solFlip(40), ErrSignature, ""},
		{"Solana: message tampered", std(otherSolNonce) + "." + solSig, ErrSignature, ""},
		{"Solana: EVM signature", solB64 + "." + evmSig, ErrMalformed, "base58"},
		{"EVM: Solana signature", evmB64 + "." + solSig, ErrMalformed, "0x"},
		{"too long", strings.Repeat("A", MaxTokenLength+1), ErrMalformed, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newTestVerifier(t, nil)
			_, _, err := v.Verify(tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, tt.want, tt.reason)
		})
	}
}

func TestVerifyConfig(t *testing.T) {
	// A URI with a path and a trailing slash: messages must be under
	// /v1, with or without the slash.
	v, _ := newTestVerifier(t, func(c *Config) { c.URI = "https://api.example.com/v1/" })
	for uri, ok := range map[string]bool{
		"https://api.example.com/v1":         true,
		"https://api.example.com/v1/":        true,
		"https://api.example.com/v1/login":   true,
		"https://api.example.com/v1?x=1":     true,
		"https://api.example.com/v1#top":     true,
		"https://api.example.com/v10":        false,
		"https://api.example.com/":           false,
		"https://api.example.com":            false,
		"http://api.example.com/v1":          false,
		"https://api.example.com:8443/v1":    false,
		"https://api.example.com/v1@evil":    false, // "v1@evil" is another segment
		"https://API.example.com/v1":         false,
		"https://api.example.com.evil.test/": false,
	} {
		if got := v.uriAllowed(uri); got != ok {
			t.Errorf("uriAllowed(%q) = %v, want %v", uri, got, ok)
		}
	}

	// The token's chain must be configured: Base only refuses mainnet.
	v, _ = newTestVerifier(t, func(c *Config) { c.Chains = []string{"eip155:8453"} })
	_, _, err := v.Verify(tok(t, "evm_mainnet").token)
	checkErr(t, err, ErrMalformed, `chain "eip155:1"`)
	_, _, err = v.Verify(tok(t, "solana").token)
	checkErr(t, err, ErrMalformed, "chain")

	// MaxLifetime and Skew.
	v, _ = newTestVerifier(t, func(c *Config) { c.MaxLifetime = 30 * time.Minute })
	_, _, err = v.Verify(tok(t, "evm").token)
	checkErr(t, err, ErrMalformed, "lifetime 1h0m0s (Issued At to Expiration Time) exceeds 30m0s")
	v, fake := newTestVerifier(t, func(c *Config) { c.Skew = 20 * time.Minute })
	fake.Set(at("00:20:00"))
	if _, _, err := v.Verify(tok(t, "evm_issued_future").token); err != nil {
		t.Errorf("issued 20 minutes ahead with a skew of 20 minutes: %v", err)
	}
}

func TestNew(t *testing.T) {
	base := testConfig(nil)
	v, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if v.maxLifetime != DefaultMaxLifetime || v.skew != DefaultSkew || v.cache.lru == nil || v.uri != "https://api.example.com" {
		t.Errorf("defaults: %+v", v)
	}
	if _, ok := v.clock.(clock.System); !ok {
		t.Errorf("clock %T, want clock.System", v.clock)
	}
	v, err = New(Config{Domain: "localhost:8080", URI: "http://localhost:8080/", Chains: []string{"eip155:1"}, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if v.cache != nil || v.uri != "http://localhost:8080" || v.scheme != "http" {
		t.Errorf("got %+v", v)
	}

	bad := []struct {
		name string
		edit func(*Config)
	}{
		{"no domain", func(c *Config) { c.Domain = "" }},
		{"domain with a scheme", func(c *Config) { c.Domain = "https://api.example.com" }},
		{"domain with a path", func(c *Config) { c.Domain = "api.example.com/login" }},
		{"domain with user info", func(c *Config) { c.Domain = "me@api.example.com" }},
		{"domain with a space", func(c *Config) { c.Domain = "api example.com" }},
		{"no URI", func(c *Config) { c.URI = "" }},
		{"relative URI", func(c *Config) { c.URI = "/login" }},
		{"URI without a host", func(c *Config) { c.URI = "urn:example:1" }},
		{"URI with a query", func(c *Config) { c.URI = "https://api.example.com/?a=b" }},
		{"URI with a fragment", func(c *Config) { c.URI = "https://api.example.com/#a" }},
		{"URI with user info", func(c *Config) { c.URI = "https://me@api.example.com/" }},
		{"no chains", func(c *Config) { c.Chains = nil }},
		{"bitcoin", func(c *Config) { c.Chains = []string{"bip122:000000000019d6689c085ae165831e93"} }},
		{"chain without a namespace", func(c *Config) { c.Chains = []string{"8453"} }},
		{"EVM chain with a leading zero", func(c *Config) { c.Chains = []string{"eip155:08453"} }},
		{"EVM chain in hex", func(c *Config) { c.Chains = []string{"eip155:0x2105"} }},
		{"empty reference", func(c *Config) { c.Chains = []string{"eip155:"} }},
		{"Solana reference too long", func(c *Config) { c.Chains = []string{"solana:" + strings.Repeat("a", 33)} }},
		{"Solana reference with a dot", func(c *Config) { c.Chains = []string{"solana:a.b"} }},
		{"negative MaxLifetime", func(c *Config) { c.MaxLifetime = -time.Hour }},
		{"negative Skew", func(c *Config) { c.Skew = -time.Second }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(nil)
			tt.edit(&cfg)
			if v, err := New(cfg); err == nil {
				t.Fatalf("New(%+v) = %+v, want an error", cfg, v)
			}
		})
	}
}

func TestWallet(t *testing.T) {
	w := Wallet{Chain: "eip155:8453", Address: "0x15C9e5519150ad77e66Eb6C320B09400d0F8ad32"}
	if got, want := w.Account(), "eip155:0x15C9e5519150ad77e66Eb6C320B09400d0F8ad32"; got != want {
		t.Errorf("Account() = %q, want %q", got, want)
	}
	if got, want := w.String(), "eip155:8453:0x15C9e5519150ad77e66Eb6C320B09400d0F8ad32"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s := Wallet{Chain: solanaMainnet, Address: "J6EEJ6bhwy8ciZvcWZt6YgTSNfY35hmpmC5dLiyAKyx6"}
	if got, want := s.Account(), "solana:J6EEJ6bhwy8ciZvcWZt6YgTSNfY35hmpmC5dLiyAKyx6"; got != want {
		t.Errorf("Account() = %q, want %q", got, want)
	}
}
