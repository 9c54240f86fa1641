package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/reqsign"
)

// signingKeys authenticates one key that has a signing secret.
type signingKeys struct{ key credentials.Key }

func (k signingKeys) Lookup(context.Context, string) (credentials.Key, error) { return k.key, nil }

// BenchmarkAuthenticateSigned is the whole decision on an HMAC-signed POST
// with a 1 KiB body (seed scheme, with a nonce): the key lookup (cached
// answer), reading and putting back the body, the HMAC, and the replay
// cache. The requests are signed, each with its own nonce as the replay cache
// demands, in batches while the timer is stopped.
func BenchmarkAuthenticateSigned(b *testing.B) {
	secret := []byte("tgs_benchmark-signing-secret")
	now := time.Unix(1_800_000_000, 0)
	m := APIKeyMethod{
		Keys: signingKeys{credentials.Key{Principal: &authn.Principal{OrgID: "org_1", CredentialID: "key_1"}, SigningSecret: secret}},
		Signatures: &SignatureChecker{
			Counters: memory.New(clock.NewFake(now)), Clock: clock.NewFake(now), Window: 5 * time.Minute,
		},
	}
	body := strings.Repeat("x", 1024)
	ts := strconv.FormatInt(now.Unix(), 10)
	const batch = 1024
	reqs := make([]*http.Request, 0, batch)
	n := 0
	refill := func() {
		reqs = reqs[:0]
		for range batch {
			n++
			nonce := "nonce-" + strconv.Itoa(n) + "-padding"
			r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(body))
			r.Header.Set(HeaderAPIKey, "tgk_benchmark")
			r.Header.Set(reqsign.HeaderTimestamp, ts)
			r.Header.Set(reqsign.HeaderNonce, nonce)
			r.Header.Set(reqsign.HeaderSignature, reqsign.SeedSign(secret, reqsign.SeedMessage("POST", "/v1/orders", []byte(body), ts, nonce)))
			reqs = append(reqs, r)
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := batch
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			refill()
			i = 0
			b.StartTimer()
		}
		if _, err := m.Authenticate(reqs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestReadBody(t *testing.T) {
	body := strings.Repeat("b", 3000)
	for _, c := range []struct {
		name   string
		length int64
	}{{"stated", 3000}, {"unknown", -1}, {"understated", 10}, {"overstated", 5000}} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.ContentLength = c.length
		got, err := readBody(r)
		if err != nil || string(got) != body {
			t.Errorf("%s: %d bytes, %v", c.name, len(got), err)
		}
	}
	// The server's body limit still applies.
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 100)
	if _, err := readBody(r); err == nil {
		t.Error("no error past the body limit")
	}
}
