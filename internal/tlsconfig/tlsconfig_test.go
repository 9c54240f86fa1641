package tlsconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

// certificate returns a self-signed certificate for 127.0.0.1 under key,
// and a pool that trusts it.
func certificate(t *testing.T, key crypto.Signer) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tollgate test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// serve accepts TLS connections on a loopback port with cfg, completing
// each handshake and writing "ok", until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial completes a handshake offering only suite, in TLS 1.2, and returns
// the suite negotiated.
func dial(addr string, pool *x509.CertPool, suite uint16) (uint16, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{
		RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite},
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := io.ReadAll(c); err != nil {
		return 0, err
	}
	return c.ConnectionState().CipherSuite, nil
}

// TestTLS12Suites offers every TLS 1.2 suite Go knows, one at a time, to a
// listener with an ECDSA and one with an RSA certificate: the handshake
// succeeds exactly for the ECDHE AEAD suites of the certificate's kind.
func TestTLS12Suites(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var all []*tls.CipherSuite
	all = append(all, tls.CipherSuites()...)
	all = append(all, tls.InsecureCipherSuites()...)
	for _, c := range []struct {
		name string
		key  crypto.Signer
		want []uint16
	}{
		{"ECDSA", ecKey, []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		}},
		{"RSA", rsaKey, []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert, pool := certificate(t, c.key)
			addr := serve(t, Server(tls.VersionTLS12, cert))
			tested := 0
			for _, s := range all {
				if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
					continue // TLS 1.3 suites are not chosen by the client
				}
				tested++
				got, err := dial(addr, pool, s.ID)
				switch {
				case slices.Contains(c.want, s.ID) && (err != nil || got != s.ID):
					t.Errorf("%s: handshake failed (%v) or negotiated %s", s.Name, err, tls.CipherSuiteName(got))
				case !slices.Contains(c.want, s.ID) && err == nil:
					t.Errorf("%s: accepted", s.Name)
				}
			}
			if tested < 20 {
				t.Fatalf("only %d TLS 1.2 suites tested", tested)
			}
		})
	}
}

// TestTLS13 is negotiated by default, with its AEAD suites.
func TestTLS13(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, pool := certificate(t, key)
	for _, min := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		addr := serve(t, Server(min, cert))
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		st := c.ConnectionState()
		_ = c.Close()
		if st.Version != tls.VersionTLS13 {
			t.Errorf("min %x: negotiated %x, want TLS 1.3", min, st.Version)
		}
		if min == tls.VersionTLS13 {
			if _, err := dial(addr, pool, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err == nil {
				t.Error("TLS 1.2 accepted with a minimum of 1.3")
			}
		}
	}
}

func TestServerConfig(t *testing.T) {
	cfg := Server(tls.VersionTLS10)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2 at least", cfg.MinVersion)
	}
	cfg.CipherSuites[0] = tls.TLS_RSA_WITH_AES_128_CBC_SHA
	if CipherSuites[0] == tls.TLS_RSA_WITH_AES_128_CBC_SHA {
		t.Error("a caller's change reached the package's list")
	}
}
