package siwx

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
)

// tokens is testdata/tokens.json, made by testdata/gen_tokens.mjs with
// ethers (EVM) and tweetnacl and bs58 (Solana).
type tokenFile struct {
	Generator       string   `json:"generator"`
	EVMAddresses    []string `json:"evm_addresses"`
	SolanaAddresses []string `json:"solana_addresses"`
	Tokens          []struct {
		Name    string `json:"name"`
		Note    string `json:"note"`
		Message string `json:"message"`
		Token   string `json:"token"`
	} `json:"tokens"`
	Headers []struct {
		Name    string `json:"name"`
		Note    string `json:"note"`
		Message string `json:"message"`
		Header  string `json:"header"`
	} `json:"headers"`
}

type testToken struct{ message, token string }

func loadTokens(t testing.TB) (tokenFile, map[string]testToken) {
	t.Helper()
	b, err := os.ReadFile("testdata/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var f tokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]testToken, len(f.Tokens))
	for _, tk := range f.Tokens {
		byName[tk.Name] = testToken{tk.Message, tk.Token}
	}
	return f, byName
}

// tok returns the named token of testdata/tokens.json.
func tok(t testing.TB, name string) testToken {
	t.Helper()
	_, m := loadTokens(t)
	tk, ok := m[name]
	if !ok {
		t.Fatalf("no token %q in testdata/tokens.json", name)
	}
	return tk
}

const solanaMainnet = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"

// t0 is the instant most tests check tokens at: half-way through the
// lifetime of most tokens (issued 2030-01-01T00:00:00Z, expiring 01:00).
var t0 = time.Date(2030, 1, 1, 0, 30, 0, 0, time.UTC)

func at(hms string) time.Time {
	t, err := time.Parse(time.RFC3339, "2030-01-01T"+hms+"Z")
	if err != nil {
		panic(err)
	}
	return t
}

func testConfig(c clock.Clock) Config {
	return Config{
		Domain: "api.example.com",
		URI:    "https://api.example.com",
		Chains: []string{"eip155:8453", "eip155:1", solanaMainnet},
		Clock:  c,
	}
}

// newTestVerifier returns a Verifier of testConfig, changed by edit if not
// nil, on a fake clock at t0.
func newTestVerifier(t testing.TB, edit func(*Config)) (*Verifier, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(t0)
	cfg := testConfig(fake)
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, fake
}
