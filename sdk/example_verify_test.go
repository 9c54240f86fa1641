package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/sdk"
)

// A receiver checks a delivery against the raw body and answers with the
// seed's error codes. The values are the Standard Webhooks test vector,
// signed with the endpoint's old secret during a rotation.
func ExampleVerifyWebhook() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from the environment, in real life
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	h.Set("X-Webhook-Signature", "t=1614265330,v1=4d315e1ba3a395ae4bccb6945393ff97b9f50eb786d0a15bfcda95b64b78b7ac,v1=e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef")
	body := []byte(`{"test": 2432232314}`)

	code := func(err error) string {
		switch {
		case err == nil:
			return "OK"
		case errors.Is(err, sdk.ErrWebhookMissingSignature):
			return "MISSING_SIGNATURE"
		case errors.Is(err, sdk.ErrWebhookTimestamp):
			return "INVALID_SIGNATURE (timestamp)"
		case errors.Is(err, sdk.ErrWebhookInvalidSignature):
			return "INVALID_SIGNATURE"
		default:
			return "internal error: " + err.Error()
		}
	}
	now := time.Unix(1614265330+60, 0) // a minute after it was sent
	fmt.Println(code(sdk.VerifyWebhook(secret, h, body, now)))
	fmt.Println(code(sdk.VerifyWebhook(secret, h, []byte(`{"test": 1}`), now)))
	fmt.Println(code(sdk.VerifyWebhook(secret, h, body, now.Add(time.Hour))))
	fmt.Println(code(sdk.VerifyWebhook(secret, http.Header{}, body, now)))
	// Output:
	// OK
	// INVALID_SIGNATURE
	// INVALID_SIGNATURE (timestamp)
	// MISSING_SIGNATURE
}

// A webhook endpoint: the handler verifies every delivery and answers 401
// with MISSING_SIGNATURE or INVALID_SIGNATURE itself; the function sees
// verified deliveries only.
func ExampleWebhookHandler() {
	seen := newSeenIDs() // your store of processed webhook-id values
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/tollgate", sdk.WebhookHandler(os.Getenv("TOLLGATE_WEBHOOK_SECRET"),
		func(w http.ResponseWriter, r *http.Request, body []byte) {
			// Delivery is at least once: skip what was already processed.
			if !seen.Add(r.Header.Get("webhook-id")) {
				w.WriteHeader(http.StatusOK)
				return
			}
			// Answer quickly; process body (the raw JSON) in the background.
			w.WriteHeader(http.StatusNoContent)
		}))
	log.Fatal(http.ListenAndServe(":8080", mux))
}

// seenIDs stands in for a store of webhook IDs with an expiry.
type seenIDs struct{ m map[string]bool }

func newSeenIDs() *seenIDs { return &seenIDs{m: map[string]bool{}} }

// Add records id and reports whether it was new.
func (s *seenIDs) Add(id string) bool {
	if s.m[id] {
		return false
	}
	s.m[id] = true
	return true
}

// A client that accepts only responses signed by the gateway: it fetches the
// published keys once, and again when the gateway rotates its key.
func ExampleSignedTransport() {
	gw := exampleSigningGateway() // stands in for https://api.example.com
	defer gw.Close()

	ctx := context.Background()
	verifier, err := sdk.NewResponseVerifier(ctx, gw.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &sdk.SignedTransport{Verifier: verifier}}

	resp, err := client.Get(gw.URL + "/v1/hello")
	if err != nil {
		log.Fatal(err) // also for an unsigned or forged response
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, string(body))

	_, err = client.Get(gw.URL + "/v1/events")
	fmt.Println(errors.Is(err, sdk.ErrResponseUnsigned))
	var unsigned *sdk.UnsignedResponseError
	if errors.As(err, &unsigned) {
		fmt.Println("unsigned:", unsigned.Reason)
	}
	// Output:
	// 200 OK {"hello":"world"}
	// true
	// unsigned: streamed
}

// The seed's way: one PEM key, copied once, checked against X-Signature.
func ExampleVerifyResponseSignature() {
	gw := exampleSigningGateway()
	defer gw.Close()

	pemKey := getAccept(gw.URL+sdk.ResponseKeysPath, "application/x-pem-file")
	resp, err := http.Get(gw.URL + "/v1/hello")
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body) // the raw body: verify before parsing
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	sig := resp.Header.Get(sdk.HeaderResponseSignature)
	fmt.Println(sdk.VerifyResponseSignature(pemKey, body, sig))
	err = sdk.VerifyResponseSignature(pemKey, bytes.ToUpper(body), sig)
	fmt.Println(errors.Is(err, sdk.ErrInvalidResponseSignature))
	// Output:
	// <nil>
	// true
}

func getAccept(url, accept string) []byte {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// exampleSigningGateway publishes a response signing key and signs the
// responses of two routes, as a Tollgate gateway does.
func exampleSigningGateway() *httptest.Server {
	box, err := secretbox.New(bytes.Repeat([]byte{1}, secretbox.KeySize))
	if err != nil {
		log.Fatal(err)
	}
	ring, err := respsign.LoadKeyring(context.Background(), &memSigningKeys{}, box, clock.System{})
	if err != nil {
		log.Fatal(err)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/hello", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"world"}`)
	})
	api.HandleFunc("GET /v1/events", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, strings.Repeat("data: {}\n\n", 3))
		w.(http.Flusher).Flush()
	})
	mux := http.NewServeMux()
	mux.Handle(sdk.ResponseKeysPath, ring)
	mux.Handle("/", (&respsign.Middleware{Keyring: ring}).Wrap(api))
	return httptest.NewServer(mux)
}
