package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The public listener accepts, in TLS 1.2, only ECDHE suites with AES-GCM or
// ChaCha20-Poly1305: a client that offers only CBC (SHA-1 or SHA-256 MAC) or
// RSA key exchange cannot connect; one that offers an AEAD suite can.
func TestTLSCipherSuitesAEADOnly(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t) // ECDSA P-256
	yaml := strings.Replace(baseYAML(t.TempDir(), newRecorder(t, nil).URL), "  insecure_http: true",
		fmt.Sprintf("  tls: {cert_file: %s, key_file: %s}", certFile, keyFile), 1)
	n := start(t, yaml, nil)
	get := func(suite uint16) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite},
		}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + n.srv.Addr() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	} {
		if _, err := get(suite); err == nil {
			t.Errorf("%s: handshake succeeded", tls.CipherSuiteName(suite))
		}
	}
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	} {
		resp, err := get(suite)
		if err != nil {
			t.Errorf("%s: %v", tls.CipherSuiteName(suite), err)
			continue
		}
		if resp.StatusCode != 200 || resp.TLS.CipherSuite != suite {
			t.Errorf("%s: status %d, negotiated %s", tls.CipherSuiteName(suite), resp.StatusCode, tls.CipherSuiteName(resp.TLS.CipherSuite))
		}
	}
}
