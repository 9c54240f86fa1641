package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tollgate/tollgate/sdk"
)

func Example() {
	gw := fakeGateway() // stands in for https://api.example.com
	defer gw.Close()

	ctx := context.Background()
	conf := sdk.ClientCredentials{
		TokenURL:     gw.URL + "/oauth/token",
		ClientID:     "cli_example",
		ClientSecret: "example-secret", // keep it out of the source: read it from the environment
		Scopes:       []string{"read"},
	}
	client := conf.Client(ctx) // reuse it: it caches the token

	for range 3 {
		resp, err := client.Get(gw.URL + "/v1/hello")
		if err != nil {
			log.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.Status, string(body))
	}
	// Output:
	// 200 OK hello, cli_example
	// 200 OK hello, cli_example
	// 200 OK hello, cli_example
}

// fakeGateway serves a token endpoint and one API route, the way a
// Tollgate gateway does, for a single app and a single token.
func fakeGateway() *httptest.Server {
	const token = "example-token"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "cli_example" || secret != "example-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": token, "token_type": "Bearer", "expires_in": 86400, "scope": r.FormValue("scope"),
		})
	})
	mux.HandleFunc("GET /v1/hello", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Authorization"), "Bearer "+token) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"INVALID_TOKEN"}}`)
			return
		}
		io.WriteString(w, "hello, cli_example")
	})
	return httptest.NewServer(mux)
}
