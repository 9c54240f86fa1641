package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and returns the file paths
// and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tollgate test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	be := newRecorder(t, nil)
	certFile, keyFile, pool := selfSigned(t)
	yaml := strings.Replace(baseYAML(t.TempDir(), be.URL), "  insecure_http: true",
		fmt.Sprintf("  tls: {cert_file: %s, key_file: %s}", certFile, keyFile), 1)
	n := start(t, yaml, nil)
	addr := n.srv.Addr()

	client := func(cfg *tls.Config) *http.Client {
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}

	// HTTPS, HTTP/2, HSTS on every response, including refusals.
	resp, err := client(&tls.Config{RootCAs: pool}).Get("https://" + addr + "/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.ProtoMajor != 2 {
		t.Errorf("status %d over %s", resp.StatusCode, resp.Proto)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000" {
		t.Errorf("HSTS = %q", hsts)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS %x, want 1.3 preferred", resp.TLS.Version)
	}

	// TLS 1.1 is refused.
	_, err = client(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}).Get("https://" + addr + "/healthz")
	if err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}
	// TLS 1.2 is accepted.
	if resp, err := client(&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}).Get("https://" + addr + "/healthz"); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	} else {
		resp.Body.Close()
	}

	// Plain HTTP to the TLS port is refused, not served.
	resp, err = http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || strings.Contains(string(body), "ok") {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, body)
	}
	if len(be.all()) != 0 {
		t.Error("backend reached")
	}
}

func TestPlainHTTPWithoutOptInRefusesToStart(t *testing.T) {
	yaml := strings.Replace(baseYAML(t.TempDir(), "http://127.0.0.1:9"), "  insecure_http: true\n", "", 1)
	if _, err := start0(yaml); err == nil || !strings.Contains(err.Error(), "no TLS configured") {
		t.Fatalf("err = %v", err)
	}
}

func start0(yaml string) (*Server, error) {
	cfg, err := parseYAML(yaml)
	if err != nil {
		return nil, err
	}
	return New(context.Background(), cfg, Options{})
}

func TestWebSocketThroughTheGateway(t *testing.T) {
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			_ = c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		}
	})
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	token := n.account("kim@example.com", "Kim")
	key, keyID := n.createKey(token, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Without a key the handshake is refused by the gateway.
	_, resp, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/v1/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without key: %v %v", err, resp)
	}
	if len(be.all()) != 0 {
		t.Fatal("refused handshake reached the backend")
	}

	c, _, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/v1/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-API-KEY": {key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %q %v", got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	hs := be.all()[0].Header
	if hs.Get("X-Tollgate-Credential") != keyID || hs.Get("X-Api-Key") != "" {
		t.Errorf("handshake headers at the backend: %v", hs)
	}
	// The access log records the upgrade.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(n.logs.String(), `"status":101`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(n.logs.String(), `"status":101`) {
		t.Error("no access-log line with status 101")
	}
}

func TestGatewayBodyLimit(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL)+"\n", nil)
	n.stop()
	yaml := strings.Replace(n.yaml, "  insecure_http: true", "  insecure_http: true\n  max_body_bytes: 1024", 1)
	n = start(t, yaml, nil)
	token := n.account("lee@example.com", "Lee")
	key, _ := n.createKey(token, nil)

	r := do(t, "POST", n.base+"/v1/upload", strings.Repeat("x", 2048), "X-API-KEY", key, "Content-Type", "text/plain")
	if code, _ := r.errCode(t); r.Status != 413 || code != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("declared length over the limit: %d %s", r.Status, r.Body)
	}
	// A chunked body (no declared length) is cut off at the limit too.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(strings.Repeat("y", 4096)))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", n.base+"/v1/upload", pr)
	req.Header.Set("X-API-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rr := readResponse(t, resp)
	if rr.Status != 413 {
		t.Fatalf("chunked body over the limit: %d %s", rr.Status, rr.Body)
	}
	for _, got := range be.all() {
		if len(got.Body) > 1024 {
			t.Fatalf("backend received %d bytes", len(got.Body))
		}
	}
	// Within the limit, the body arrives intact.
	r = do(t, "POST", n.base+"/v1/upload", "small body", "X-API-KEY", key, "Content-Type", "text/plain")
	all := be.all()
	if r.Status != 200 || all[len(all)-1].Body != "small body" {
		t.Fatalf("small body: %d, backend got %q", r.Status, all[len(all)-1].Body)
	}
}
