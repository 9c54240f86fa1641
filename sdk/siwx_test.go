package sdk

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/siwx"
)

// TestSIWXTokensVerify: tokens the SDK signs pass Tollgate's verifier, for
// both chain families, and name the signer's address.
func TestSIWXTokensVerify(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v, err := siwx.New(siwx.Config{
		Domain: "api.example.com", URI: "https://api.example.com",
		Chains: []string{"eip155:8453", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"},
		Clock:  clock.NewFake(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := SIWXMessage{
		Domain: "api.example.com", URI: "https://api.example.com", Nonce: "32891756aB",
		Statement: "Sign in to use the API.", IssuedAt: now.Add(-time.Minute), ExpirationTime: now.Add(time.Hour),
	}

	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	evmMsg := m
	evmMsg.ChainID = "8453"
	tok, err := EthereumSIWXToken(key, evmMsg)
	if err != nil {
		t.Fatal(err)
	}
	w, exp, err := v.Verify(tok)
	if err != nil || w.Chain != "eip155:8453" || !strings.HasPrefix(w.Account(), "eip155:0x") || !exp.Equal(m.ExpirationTime) {
		t.Errorf("EVM token: %+v %v %v", w, exp, err)
	}

	_, edKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	solMsg := m
	solMsg.ChainID = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
	tok, err = SolanaSIWXToken(edKey, solMsg)
	if err != nil {
		t.Fatal(err)
	}
	if w, _, err := v.Verify(tok); err != nil || w.Chain != "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" {
		t.Errorf("Solana token: %+v %v", w, err)
	}

	if _, err := EthereumSIWXToken(nil, evmMsg); err == nil {
		t.Error("no key: no error")
	}
	bad := evmMsg
	bad.Nonce = "short"
	if _, err := EthereumSIWXToken(key, bad); err == nil {
		t.Error("a message the parser refuses (nonce of 5 characters): no error")
	}
}
