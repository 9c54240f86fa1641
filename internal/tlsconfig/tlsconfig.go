// Package tlsconfig is the TLS policy of every TLS listener Tollgate serves:
// TLS 1.2 at least (1.3 preferred, as Go negotiates it), and in TLS 1.2 only
// cipher suites with forward secrecy and authenticated encryption, as RFC
// 9325 (BCP 195) section 4 recommends: ECDHE key exchange (RFC 8422) with
// AES-GCM (RFC 5289) or ChaCha20-Poly1305 (RFC 7905). No
// CBC mode (and so no SHA-1 MAC, and no Lucky Thirteen), no RSA key
// exchange (no forward secrecy, ROBOT), no 3DES or RC4. TLS 1.3's suites
// are all AEAD and Go does not let them be chosen; they stay as Go has them.
package tlsconfig

import "crypto/tls"

// CipherSuites are the TLS 1.2 cipher suites a Tollgate listener accepts,
// ECDSA and RSA certificates alike. Go orders them by its own preference
// (AES-GCM first where the CPU accelerates AES, else ChaCha20-Poly1305).
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Server returns the configuration of a TLS listener serving certs, which
// accepts TLS from minVersion (tls.VersionTLS12 or tls.VersionTLS13; an
// older version is raised to 1.2). The caller may set more fields (such as
// NextProtos) on the result, which is its own.
func Server(minVersion uint16, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   max(minVersion, tls.VersionTLS12),
		CipherSuites: append([]uint16(nil), CipherSuites...),
		Certificates: certs,
	}
}
