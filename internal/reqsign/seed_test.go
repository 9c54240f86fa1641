package reqsign

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testSecret = "tollgate-test-secret"

// seedVectors were computed outside Go, with OpenSSL 3.0:
//
//	printf '%s' "$METHOD$TARGET$BODY$TIMESTAMP$NONCE" |
//	    openssl dgst -sha256 -hmac tollgate-test-secret
var seedVectors = []struct {
	name                            string
	method, target, body, ts, nonce string
	want                            string
}{
	{
		name:   "GET with query",
		method: "GET", target: "/v1/orders?status=open&limit=10", ts: "1700000000",
		want: "dcc3dca662ef0b156284a1a759c45daf47b04e887c51b3a48459e0cfd32afecd",
	},
	{
		name:   "POST with JSON body",
		method: "POST", target: "/v1/orders", body: `{"amount":1000,"currency":"USD"}`, ts: "1700000123",
		want: "5945d6ee616b2e2d1312745cb5380f647f54b4363b501ad94ba0beb31351b5b9",
	},
	{
		name:   "POST with empty body",
		method: "POST", target: "/v1/ping", ts: "1700000456",
		want: "4d6f3edf60b1433f22eff1de95358d12533c3971cbef209b9d434ddeb8b6175c",
	},
	{
		name:   "POST with nonce",
		method: "POST", target: "/v1/orders", body: `{"amount":1000,"currency":"USD"}`, ts: "1700000123",
		nonce: "n0nce-abc_123.~x",
		want:  "e9ebee9722f2bf5a0b19e5aedd04b8a8e5d6cc71532e54fb4f1f90f1c1e523f4",
	},
	{
		name:   "percent-encoded query as sent",
		method: "GET", target: "/v1/search?q=caf%C3%A9&tags=a,b", ts: "1700000789",
		want: "f7186ffea329f135fc28ea88db27aacfe193e55f82040d3874354c17d1731236",
	},
}

func unix(s string) time.Time {
	ts, ok := parseTimestamp(s)
	if !ok {
		panic("bad timestamp " + s)
	}
	return time.Unix(ts, 0)
}

func TestSeedGolden(t *testing.T) {
	for _, v := range seedVectors {
		t.Run(v.name, func(t *testing.T) {
			msg := SeedMessage(v.method, v.target, []byte(v.body), v.ts, v.nonce)
			if want := v.method + v.target + v.body + v.ts + v.nonce; string(msg) != want {
				t.Fatalf("SeedMessage = %q, want %q", msg, want)
			}
			if got := SeedSign([]byte(testSecret), msg); got != v.want {
				t.Fatalf("SeedSign = %s, want %s", got, v.want)
			}

			h := http.Header{}
			h.Set("X-API-KEY", "tgk_0123456789ABCDEFGHIJKLMNOPQRSTUV0HtjbW")
			h.Set("X-Timestamp", v.ts)
			h.Set("X-Signature", v.want)
			if v.nonce != "" {
				h.Set("X-Nonce", v.nonce)
			}
			sh, err := ParseSeedHeaders(h)
			if err != nil {
				t.Fatal(err)
			}
			now := unix(v.ts).Add(299 * time.Second)
			if err := VerifySeed([]byte(testSecret), sh, v.method, v.target, []byte(v.body), now, 5*time.Minute); err != nil {
				t.Fatalf("VerifySeed: %v", err)
			}
		})
	}
}

func seedHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseSeedHeaders(t *testing.T) {
	const (
		key = "tgk_key"
		ts  = "1700000000"
		sig = "dcc3dca662ef0b156284a1a759c45daf47b04e887c51b3a48459e0cfd32afecd"
	)
	ok := []struct {
		name string
		h    http.Header
		want SeedHeaders
	}{
		{"minimal", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig),
			SeedHeaders{APIKey: key, Timestamp: ts, Signature: sig}},
		{"nonce", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", "Az09._~-"),
			SeedHeaders{APIKey: key, Timestamp: ts, Signature: sig, Nonce: "Az09._~-"}},
		{"zero timestamp", seedHeader("X-Api-Key", key, "X-Timestamp", "0", "X-Signature", sig),
			SeedHeaders{APIKey: key, Timestamp: "0", Signature: sig}},
		{"max timestamp", seedHeader("X-Api-Key", key, "X-Timestamp", "9999999999", "X-Signature", sig),
			SeedHeaders{APIKey: key, Timestamp: "9999999999", Signature: sig}},
		{"128-char nonce", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", strings.Repeat("n", 128)),
			SeedHeaders{APIKey: key, Timestamp: ts, Signature: sig, Nonce: strings.Repeat("n", 128)}},
	}
	for _, c := range ok {
		got, err := ParseSeedHeaders(c.h)
		if err != nil || got != c.want {
			t.Errorf("%s: ParseSeedHeaders = %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}

	bad := []struct {
		name string
		h    http.Header
		want error
	}{
		{"no signature", seedHeader("X-Api-Key", key, "X-Timestamp", ts), ErrNoSignature},
		{"nothing", http.Header{}, ErrNoSignature},
		{"no key", seedHeader("X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"no timestamp", seedHeader("X-Api-Key", key, "X-Signature", sig), ErrMalformed},
		{"two signatures", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Signature", sig), ErrMalformed},
		{"two timestamps", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"two keys", seedHeader("X-Api-Key", key, "X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"two nonces", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", "abcdefgh", "X-Nonce", "abcdefgh"), ErrMalformed},
		{"empty key", seedHeader("X-Api-Key", "", "X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"key with space", seedHeader("X-Api-Key", "a b", "X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"long key", seedHeader("X-Api-Key", strings.Repeat("k", 257), "X-Timestamp", ts, "X-Signature", sig), ErrMalformed},
		{"empty timestamp", seedHeader("X-Api-Key", key, "X-Timestamp", "", "X-Signature", sig), ErrMalformed},
		{"leading zero", seedHeader("X-Api-Key", key, "X-Timestamp", "01700000000", "X-Signature", sig), ErrMalformed},
		{"plus sign", seedHeader("X-Api-Key", key, "X-Timestamp", "+1700000000", "X-Signature", sig), ErrMalformed},
		{"minus sign", seedHeader("X-Api-Key", key, "X-Timestamp", "-1", "X-Signature", sig), ErrMalformed},
		{"11 digits", seedHeader("X-Api-Key", key, "X-Timestamp", "17000000000", "X-Signature", sig), ErrMalformed},
		{"milliseconds", seedHeader("X-Api-Key", key, "X-Timestamp", "1700000000000", "X-Signature", sig), ErrMalformed},
		{"decimal", seedHeader("X-Api-Key", key, "X-Timestamp", "1700000000.5", "X-Signature", sig), ErrMalformed},
		{"space in timestamp", seedHeader("X-Api-Key", key, "X-Timestamp", " 1700000000", "X-Signature", sig), ErrMalformed},
		{"empty nonce", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", ""), ErrMalformed},
		{"short nonce", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", "abcdefg"), ErrMalformed},
		{"long nonce", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", strings.Repeat("n", 129)), ErrMalformed},
		{"nonce with slash", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig, "X-Nonce", "abcd/efgh"), ErrMalformed},
		{"uppercase signature", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", strings.ToUpper(sig)), ErrMalformed},
		{"short signature", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig[1:]), ErrMalformed},
		{"long signature", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", sig+"0"), ErrMalformed},
		{"non-hex signature", seedHeader("X-Api-Key", key, "X-Timestamp", ts, "X-Signature", "g"+sig[1:]), ErrMalformed},
	}
	for _, c := range bad {
		_, err := ParseSeedHeaders(c.h)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: ParseSeedHeaders error = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestVerifySeedErrors(t *testing.T) {
	v := seedVectors[3] // with nonce
	secret := []byte(testSecret)
	good := SeedHeaders{APIKey: "k", Timestamp: v.ts, Nonce: v.nonce, Signature: v.want}
	ts := unix(v.ts)
	const window = 5 * time.Minute
	verify := func(h SeedHeaders, method, target, body string, now time.Time) error {
		return VerifySeed(secret, h, method, target, []byte(body), now, window)
	}
	with := func(f func(*SeedHeaders)) SeedHeaders {
		h := good
		f(&h)
		return h
	}

	cases := []struct {
		name string
		err  error
		want error
	}{
		{"valid", verify(good, v.method, v.target, v.body, ts), nil},
		{"window edge past", verify(good, v.method, v.target, v.body, ts.Add(window)), nil},
		{"window edge future", verify(good, v.method, v.target, v.body, ts.Add(-window)), nil},
		{"too old", verify(good, v.method, v.target, v.body, ts.Add(window+time.Nanosecond)), ErrOutOfWindow},
		{"too new", verify(good, v.method, v.target, v.body, ts.Add(-window-time.Nanosecond)), ErrOutOfWindow},
		{"far future now", verify(good, v.method, v.target, v.body, time.Unix(1<<62, 0)), ErrOutOfWindow},
		{"negative window", VerifySeed(secret, good, v.method, v.target, []byte(v.body), ts, -1), ErrOutOfWindow},
		{"method", verify(good, "PUT", v.target, v.body, ts), ErrSignatureMismatch},
		{"target", verify(good, v.method, v.target+"?x=1", v.body, ts), ErrSignatureMismatch},
		{"body", verify(good, v.method, v.target, v.body+" ", ts), ErrSignatureMismatch},
		{"timestamp", verify(with(func(h *SeedHeaders) { h.Timestamp = "1700000124" }), v.method, v.target, v.body, ts), ErrSignatureMismatch},
		{"nonce swapped", verify(with(func(h *SeedHeaders) { h.Nonce = "another-nonce" }), v.method, v.target, v.body, ts), ErrSignatureMismatch},
		{"nonce stripped", verify(with(func(h *SeedHeaders) { h.Nonce = "" }), v.method, v.target, v.body, ts), ErrSignatureMismatch},
		{"signature", verify(with(func(h *SeedHeaders) { h.Signature = strings.Repeat("0", 64) }), v.method, v.target, v.body, ts), ErrSignatureMismatch},
		{"secret", VerifySeed([]byte("other"), good, v.method, v.target, []byte(v.body), ts, window), ErrSignatureMismatch},
		{"malformed struct", verify(with(func(h *SeedHeaders) { h.Timestamp = "x" }), v.method, v.target, v.body, ts), ErrMalformed},
		{"malformed signature", verify(with(func(h *SeedHeaders) { h.Signature = "zz" }), v.method, v.target, v.body, ts), ErrMalformed},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) || (c.want == nil) != (c.err == nil) {
			t.Errorf("%s: error = %v, want %v", c.name, c.err, c.want)
		}
	}
	if err := VerifySeed(nil, good, v.method, v.target, []byte(v.body), ts, window); err == nil {
		t.Error("VerifySeed with an empty secret succeeded")
	}
}

func TestSeedReplayKey(t *testing.T) {
	h := SeedHeaders{Signature: seedVectors[0].want}
	raw, _ := hex.DecodeString(seedVectors[0].want)
	sum := sha256.Sum256(raw)
	if got, want := h.ReplayKey(), "seed:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ReplayKey = %s, want %s", got, want)
	}
	h2 := h
	h2.APIKey, h2.Nonce = "other", "ignored-by-key"
	if h.ReplayKey() != h2.ReplayKey() {
		t.Error("ReplayKey depends on more than the signature")
	}
	if (SeedHeaders{Signature: seedVectors[1].want}).ReplayKey() == h.ReplayKey() {
		t.Error("different signatures share a ReplayKey")
	}
}

func TestNewNonce(t *testing.T) {
	a, b := NewNonce(), NewNonce()
	if len(a) != NonceLength || !validNonce(a) || a == b {
		t.Errorf("NewNonce() = %q, %q", a, b)
	}
}

func BenchmarkVerifySeed(b *testing.B) {
	secret := []byte(testSecret)
	body := []byte(strings.Repeat("x", 1024))
	const method, target, ts = "POST", "/v1/orders?dry_run=1", "1700000000"
	h := SeedHeaders{
		APIKey:    "tgk_key",
		Timestamp: ts,
		Nonce:     "abcdefgh12345678",
		Signature: SeedSign(secret, SeedMessage(method, target, body, ts, "abcdefgh12345678")),
	}
	now := unix(ts)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := VerifySeed(secret, h, method, target, body, now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// TestREADMEExample keeps the README's byte-exact example true (the hex was
// made with `printf '%s' … | openssl dgst -sha256 -hmac SECRET`).
func TestREADMEExample(t *testing.T) {
	secret := []byte("tgs_4kQ9zR2mX7pL1vN8rT3wY6bB0cH5jK9sA2eG7uI4oZx")
	for _, tt := range []struct{ method, target, body, want string }{
		{"POST", "/v1/orders?dry=1", `{"symbol":"ETH","qty":2}`, "d282e5fa4dc7e28af74f9ae380c0634250b4be999dae326e61b39d495dca4a39"},
		{"GET", "/v1/prices?symbol=BTC", "", "03be1830419e422c1d47d4051619df6908513590c77ea62690ddbe477d9fc516"},
	} {
		if got := SeedSign(secret, SeedMessage(tt.method, tt.target, []byte(tt.body), "1795330800", "")); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.method, tt.target, got, tt.want)
		}
	}
}
