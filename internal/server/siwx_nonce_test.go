package server

import (
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/sdk"
)

// TestSignInWithXNonces: a SIGN-IN-WITH-X proof must carry the nonce of a
// challenge this deployment issued (any node, before or after a restart:
// the nonce is MAC'd under a key derived from the master key), no older
// than 5 minutes, and is accepted once.
func TestSignInWithXNonces(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL)+x402Lines, clk)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.PayForPlan(t.Context(), n.base, "pro", key, sdk.PurchaseOptions{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	challenge := func(n *node) *sdk.SIWXChallenge {
		t.Helper()
		r := do(t, "GET", n.base+"/v1/data", nil)
		c, err := sdk.ParseSIWXChallenge(r.Header.Get("PAYMENT-REQUIRED"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	proofOf := func(c *sdk.SIWXChallenge) string {
		t.Helper()
		p, err := c.EthereumProof(key, "eip155:84532")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	send := func(n *node, proof string) response {
		t.Helper()
		return do(t, "GET", n.base+"/v1/data", nil, "SIGN-IN-WITH-X", proof)
	}
	want := func(r response, status int, code, reason string) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
		}
		if code != "" {
			if c, re := r.errCode(t); c != code || re != reason {
				t.Fatalf("%s (%s), want %s (%s)", c, re, code, reason)
			}
		}
	}

	// A fresh challenge's nonce: accepted, once.
	c := challenge(n)
	proof := proofOf(c)
	want(send(n, proof), 200, "", "")
	want(send(n, proof), 401, "INVALID_SIGNATURE", "replayed")

	// Every 402 has a nonce of its own.
	if c2 := challenge(n); c2.Info.Nonce == c.Info.Nonce {
		t.Fatalf("two challenges share the nonce %s", c.Info.Nonce)
	}

	// A nonce the client made up, correctly signed: refused.
	madeUp := challenge(n)
	madeUp.Info.Nonce = "a1b2c3d4e5f67890a1b2c3d4e5f67890"
	want(send(n, proofOf(madeUp)), 401, "INVALID_TOKEN", "")

	// A nonce issued before a restart is still accepted after it (and by
	// any node with the same master key): nothing was stored.
	before := challenge(n)
	n = n.restart()
	want(send(n, proofOf(before)), 200, "", "")

	// A challenge older than 5 minutes: expired, whenever the proof was
	// signed.
	old := challenge(n)
	clk.Advance(5 * time.Minute)
	old.Info.IssuedAt = clk.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	old.Info.ExpirationTime = ""
	want(send(n, proofOf(old)), 401, "EXPIRED_TOKEN", "")
	want(send(n, proofOf(challenge(n))), 200, "", "")
}
