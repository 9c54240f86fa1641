package whsig_test

// Interoperability with the independent Standard Webhooks Go library: what
// Sign produces verifies there, and what the library signs verifies here.
// The library reads the wall clock, so these tests sign at time.Now().

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tollgate/tollgate/internal/whsig"
)

const (
	interopNew = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	interopOld = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	interopID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
)

func library(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	return wh
}

func key(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestInteropLibraryVerifiesSign(t *testing.T) {
	body := []byte(`{"type":"payment.settled","data":{"id":"pay_1","amount":"0.01"}}`)
	newKey, oldKey := key(t, interopNew), key(t, interopOld)
	cases := []struct {
		name    string
		secrets [][]byte
		verify  []string // secrets with which the library must verify
	}{
		{"one secret", [][]byte{newKey}, []string{interopNew}},
		{"rotation", [][]byte{newKey, oldKey}, []string{interopNew, interopOld}},
		{"rotation, old first", [][]byte{oldKey, newKey}, []string{interopNew, interopOld}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := whsig.Sign(interopID, time.Now(), body, c.secrets...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.verify {
				wh := library(t, s)
				if err := wh.Verify(body, h); err != nil {
					t.Errorf("library with %s...: %v", s[:10], err)
				}
				if err := wh.Verify([]byte(strings.Replace(string(body), "0.01", "0.02", 1)), h); err == nil {
					t.Errorf("library with %s... accepted a tampered body", s[:10])
				}
			}
			if len(c.secrets) == 1 {
				if err := library(t, interopOld).Verify(body, h); err == nil {
					t.Error("library accepted a signature by another secret")
				}
			}
		})
	}
	// The library's timestamp check agrees that an old delivery is stale.
	h, err := whsig.Sign(interopID, time.Now().Add(-time.Hour), body, newKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := library(t, interopNew).Verify(body, h); err == nil {
		t.Error("library accepted an hour-old delivery")
	}
}

func TestInteropVerifyStandardVerifiesLibrary(t *testing.T) {
	body := []byte(`{"test": 2432232314}`)
	now := time.Now()
	for _, s := range []string{interopNew, interopOld} {
		sig, err := library(t, s).Sign(interopID, now, body)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(standardwebhooks.HeaderWebhookID, interopID)
		h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(standardwebhooks.HeaderWebhookSignature, sig)
		if err := whsig.VerifyStandard(h, body, key(t, s), now, 0); err != nil {
			t.Errorf("VerifyStandard of the library's %q: %v", sig, err)
		}
		if err := whsig.VerifyStandard(h, append(body, ' '), key(t, s), now, 0); err == nil {
			t.Error("VerifyStandard accepted a tampered body")
		}
		// Signatures by both, as a library-based sender would send during a
		// rotation, verify with either secret.
		other, err := library(t, interopNew).Sign(interopID, now, body)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(standardwebhooks.HeaderWebhookSignature, other+" "+sig)
		if err := whsig.VerifyStandard(h, body, key(t, s), now, 0); err != nil {
			t.Errorf("VerifyStandard of two library signatures: %v", err)
		}
	}
	// The library's result for the specification's vector is ours too.
	sig, err := library(t, interopOld).Sign(interopID, time.Unix(1614265330, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	h, err := whsig.Sign(interopID, time.Unix(1614265330, 0), body, key(t, interopOld))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get(whsig.HeaderStandardSignature); got != sig || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Errorf("Sign = %s, library = %s", got, sig)
	}
}
