package whsig_test

import (
	"errors"
	"fmt"
	"log"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/whsig"
)

// The sender signs a delivery with the endpoint's secrets: during a rotation
// the new one and the old one. The values are the Standard Webhooks test
// vector.
func ExampleSign() {
	newKey, err := whsig.ParseSecret("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		log.Fatal(err)
	}
	oldKey, err := whsig.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"test": 2432232314}`)
	h, err := whsig.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body, newKey, oldKey)
	if err != nil {
		log.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "https://receiver.example/hook", strings.NewReader(string(body)))
	if err != nil {
		log.Fatal(err)
	}
	maps.Copy(req.Header, h)
	for _, k := range []string{whsig.HeaderID, whsig.HeaderTimestamp, whsig.HeaderStandardSignature, whsig.HeaderSignature} {
		fmt.Printf("%s: %s\n", k, req.Header.Get(k))
	}
	// Output:
	// Webhook-Id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// Webhook-Timestamp: 1614265330
	// Webhook-Signature: v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// X-Webhook-Signature: t=1614265330,v1=4d315e1ba3a395ae4bccb6945393ff97b9f50eb786d0a15bfcda95b64b78b7ac,v1=e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef
}

// A receiver verifies the raw body with the one secret it knows, and maps
// the errors to the seed's error codes.
func ExampleVerify() {
	key, err := whsig.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Webhook-Signature", "t=1614265330,v1=e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef")
	body := []byte(`{"test": 2432232314}`)
	code := func(err error) string {
		switch {
		case err == nil:
			return "OK"
		case errors.Is(err, whsig.ErrMissingSignature):
			return "MISSING_SIGNATURE"
		case errors.Is(err, whsig.ErrInvalidSignature):
			return "INVALID_SIGNATURE"
		default:
			return "internal error"
		}
	}
	now := time.Unix(1614265330+60, 0) // a minute after it was sent
	fmt.Println(code(whsig.Verify(h, body, key, now, 0)))
	fmt.Println(code(whsig.Verify(h, []byte(`{"test": 1}`), key, now, 0)))
	fmt.Println(code(whsig.Verify(h, body, key, now.Add(time.Hour), 0)))
	fmt.Println(code(whsig.Verify(http.Header{}, body, key, now, 0)))
	// Output:
	// OK
	// INVALID_SIGNATURE
	// INVALID_SIGNATURE
	// MISSING_SIGNATURE
}

func ExampleVerifyStandard() {
	key, err := whsig.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	err = whsig.VerifyStandard(h, body, key, time.Unix(1614265330, 0), 0)
	fmt.Println(err)
	err = whsig.VerifyStandard(h, body, key, time.Unix(1614265330, 0).Add(10*time.Minute), 0)
	fmt.Println(errors.Is(err, whsig.ErrTimestamp), errors.Is(err, whsig.ErrInvalidSignature))
	// Output:
	// <nil>
	// true true
}

func ExampleNewSecret() {
	s, err := whsig.NewSecret()
	if err != nil {
		log.Fatal(err)
	}
	key, err := whsig.ParseSecret(s)
	fmt.Println(s[:6], len(s), len(key), err)
	// Output: whsec_ 50 32 <nil>
}
