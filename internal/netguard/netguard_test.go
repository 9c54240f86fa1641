package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	cases := []struct {
		addr   string
		reason string // "" if allowed by the zero Policy
	}{
		// Public.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"::ffff:8.8.8.8", ""},
		{"::ffff:0:808:808", ""}, // IPv4-translated 8.8.8.8
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"2001:200::1", ""},      // just after 2001::/23
		{"3fff:1000::1", ""},     // just after 3fff::/20
		{"11.0.0.0", ""},         // just after 10/8
		{"9.255.255.255", ""},    // just before 10/8
		{"126.255.255.255", ""},  // before loopback
		{"128.0.0.0", ""},        // after loopback
		{"172.15.255.255", ""},   // before 172.16/12
		{"172.32.0.0", ""},       // after
		{"100.63.255.255", ""},   // before CGNAT
		{"100.128.0.0", ""},      // after
		{"169.253.255.255", ""},  // before link-local
		{"169.255.0.0", ""},      // after
		{"192.167.255.255", ""},  // before 192.168/16
		{"192.169.0.0", ""},      // after
		{"198.17.255.255", ""},   // before benchmarking
		{"198.20.0.0", ""},       // after
		{"223.255.255.255", ""},  // before multicast
		{"1.0.0.0", ""},          // after 0/8

		// IPv4, forbidden.
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.50", "documentation"},
		{"192.88.99.1", "6to4 relay"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv6, forbidden.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"fc00::1", "unique local"},
		{"fd12:3456:789a::1", "unique local"},
		{"fd00:ec2::254", "unique local"}, // AWS instance metadata over IPv6
		{"fe80::1", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fe80::1%eth0", "zone"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"100::1", "discard"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"2001:2::1", "IETF protocol assignment"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"5f00::1", "not a global unicast"},
		{"4000::1", "not a global unicast"},
		{"::2", "IPv4-compatible"},

		// IPv6 forms of forbidden IPv4 addresses.
		{"::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"},
		{"::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:0.0.0.0", "this network"},
		{"::ffff:0:7f00:1", "IPv4-translated form of 127.0.0.1"},
		{"::ffff:0:a9fe:a9fe", "IPv4-translated form of 169.254.169.254"},
		{"64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"},
		{"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"},
		{"64:ff9b::c0a8:101", "NAT64 form of 192.168.1.1"},
		{"2002:7f00:1::1", "6to4 form of 127.0.0.1"},
		{"2002:a00:1::", "6to4 form of 10.0.0.1"},
		{"2002:a9fe:a9fe:1::1", "6to4 form of 169.254.169.254"},
	}
	for _, c := range cases {
		a := netip.MustParseAddr(c.addr)
		err := Policy{}.CheckAddr(a)
		if c.reason == "" {
			if err != nil {
				t.Errorf("%s: %v, want allowed", c.addr, err)
			}
		} else {
			var ae *AddressError
			if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) || ae.Addr != a {
				t.Errorf("%s: %v, want an *AddressError", c.addr, err)
			} else if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%s: %q does not say %q", c.addr, err, c.reason)
			}
		}
		if err := (Policy{AllowPrivate: true}).CheckAddr(a); err != nil {
			t.Errorf("%s with AllowPrivate: %v", c.addr, err)
		}
	}
	if err := (Policy{}).CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("zero Addr: %v", err)
	}
}

func TestAllowedCIDRs(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, x := range s {
			ps = append(ps, netip.MustParsePrefix(x))
		}
		return ps
	}
	cases := []struct {
		cidrs   []netip.Prefix
		allowed []string
		refused []string
	}{
		{pfx("10.0.0.0/8"),
			[]string{"10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203", "2002:a01:203::1", "8.8.8.8", "11.0.0.1"},
			[]string{"192.168.1.1", "127.0.0.1", "::ffff:192.168.1.1"}},
		{pfx("127.0.0.0/8"),
			[]string{"127.0.0.1", "::ffff:127.0.0.1"},
			[]string{"::1", "10.0.0.1", "169.254.169.254"}},
		{pfx("192.168.1.0/24", "fd00::/8"),
			[]string{"192.168.1.77", "fd00::1", "fd12::1"},
			[]string{"192.168.2.1", "fc00::1", "fe80::1"}},
		{pfx("::ffff:10.0.0.0/104"), // a mapped prefix allows the mapped form
			[]string{"::ffff:10.0.0.1"},
			[]string{"fd00::1"}},
		{[]netip.Prefix{{}}, // invalid prefixes match nothing
			[]string{"8.8.8.8"},
			[]string{"127.0.0.1", "::1"}},
	}
	for _, c := range cases {
		p := Policy{AllowedCIDRs: c.cidrs}
		for _, s := range c.allowed {
			if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
				t.Errorf("%v, %s: %v", c.cidrs, s, err)
			}
		}
		for _, s := range c.refused {
			if err := p.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("%v, %s: %v, want refused", c.cidrs, s, err)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	strict := Policy{}
	dev := Policy{AllowPrivate: true, AllowHTTP: true}
	long := "https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/"))
	cases := []struct {
		raw    string
		p      Policy
		msg    string // "" if valid; else a part of the error's text
		forbid bool   // the error matches ErrForbiddenAddress
	}{
		{"https://example.com/hooks", strict, "", false},
		{"https://hooks.example.com:8443/a/b?x=1&y=2", strict, "", false},
		{"HTTPS://EXAMPLE.COM/", strict, "", false},
		{"https://example.com./", strict, "", false},
		{"https://8.8.8.8/hook", strict, "", false},
		{"https://[2606:4700:4700::1111]:443/", strict, "", false},
		{"https://xn--bcher-kva.example/", strict, "", false},
		{"https://_acme.example.com/", strict, "", false},
		{"https://example.com:1/", strict, "", false},
		{"https://example.com:65535/", strict, "", false},
		{"https://example.com/path%20with%20space", strict, "", false},
		{"https://example.com/?", strict, "", false},
		{"https://intranet/", strict, "", false}, // refused at connection time if it resolves to a private address
		{long, strict, "", false},
		{long + "a", strict, "longer than 2048", false},

		{"http://example.com/", strict, "https, not http", false},
		{"http://example.com/", Policy{AllowHTTP: true}, "", false},
		{"ftp://example.com/", strict, "scheme must be https", false},
		{"javascript:alert(1)", strict, "scheme must be https", false},
		{"file:///etc/passwd", strict, "scheme must be https", false},
		{"gopher://127.0.0.1:6379/_", dev, "scheme must be https", false},
		{"//example.com/", strict, "absolute", false},
		{"/hooks", strict, "absolute", false},
		{"example.com", strict, "absolute", false},
		{"", strict, "absolute", false},
		{"https:example.com", strict, "no host", false},
		{"https:///path", strict, "no host", false},
		{"https://", strict, "no host", false},
		{"https://user:pass@example.com/", strict, "user information", false},
		{"https://user@example.com/", strict, "user information", false},
		{"https://@example.com/", strict, "user information", false},
		{"https://example.com/#frag", strict, "fragment", false},
		{"https://example.com/#", strict, "fragment", false},
		{"https://example.com:/", strict, "empty port", false},
		{"https://example.com:0/", strict, "port", false},
		{"https://example.com:65536/", strict, "port", false},
		{"https://example.com:0443/", strict, "port", false},
		{"https://example.com:99999999999999999999/", strict, "port", false},
		{"https://example.com:https/", strict, "not valid", false},
		{"https://exa mple.com/", strict, "not valid", false},
		{"https://example.com/\x00", strict, "not valid", false},
		{"https://example.com\\@evil.example/", strict, "not valid", false},
		{"https://exa%41mple.com/", strict, "not valid", false},
		{"https://bücher.example/", strict, "xn--", false},
		{"https://ex!ample.com/", strict, "character", false},
		{"https://ex..ample.com/", strict, "label", false},
		{"https://.example.com/", strict, "label", false},
		{"https://-example.com/", strict, "'-'", false},
		{"https://example-.com/", strict, "'-'", false},
		{"https://" + strings.Repeat("a", 64) + ".com/", strict, "63", false},
		{"https://" + strings.Repeat("a.", 127) + "com/", strict, "253", false},
		{"https://example.123/", strict, "top-level domain", false},
		{"https://127.1/", strict, "top-level domain", false},
		{"https://0x7f000001/", strict, "top-level domain", false},
		{"https://2130706433/", strict, "top-level domain", false},
		{"https://017700000001/", strict, "top-level domain", false},
		{"https://[example.com]/", strict, "not valid", false},
		{"https://[1.2.3.4]/", strict, "not valid", false},

		{"https://127.0.0.1/", strict, "127.0.0.1 is a loopback address", true},
		{"https://127.0.0.1:8443/", Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "", false},
		{"https://169.254.169.254/latest/meta-data/", strict, "link-local", true},
		{"https://10.0.0.1/", strict, "private", true},
		{"https://0.0.0.0/", strict, "this network", true},
		{"https://[::1]/", strict, "loopback", true},
		{"https://[::]/", strict, "unspecified", true},
		{"https://[::ffff:127.0.0.1]/", strict, "IPv4-mapped form of 127.0.0.1", true},
		{"https://[::ffff:a9fe:a9fe]/", strict, "169.254.169.254", true},
		{"https://[64:ff9b::a9fe:a9fe]/", strict, "NAT64", true},
		{"https://[fd00::1]/", strict, "unique local", true},
		{"https://[fe80::1%25eth0]/", strict, "zone", false},
		{"https://[fe80::1%25eth0]/", dev, "zone", false},
		{"https://localhost/", strict, "loopback name", true},
		{"https://LOCALHOST./", strict, "loopback name", true},
		{"https://app.localhost:8080/", strict, "loopback name", true},
		{"https://localhost.example.com/", strict, "", false},
		{"https://localhost/", Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "loopback name", true},
		{"https://localhost/", Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}, "", false},
		{"http://localhost:8080/hook", dev, "", false},
		{"http://127.0.0.1:8080/hook", dev, "", false},
		{"http://[::1]:8080/hook", dev, "", false},
	}
	for _, c := range cases {
		u, err := c.p.CheckURL(c.raw)
		name := c.raw
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		if c.msg == "" {
			if err != nil || u == nil {
				t.Errorf("%q: %v, want valid", name, err)
			}
			continue
		}
		switch {
		case err == nil:
			t.Errorf("%q: valid, want %q", name, c.msg)
		case !errors.Is(err, ErrInvalidURL):
			t.Errorf("%q: %v does not match ErrInvalidURL", name, err)
		case !strings.Contains(err.Error(), c.msg):
			t.Errorf("%q: %q does not say %q", name, err, c.msg)
		case errors.Is(err, ErrForbiddenAddress) != c.forbid:
			t.Errorf("%q: %v: matches ErrForbiddenAddress: %v, want %v", name, err, !c.forbid, c.forbid)
		}
	}
}

func TestControl(t *testing.T) {
	p := Policy{}
	cases := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp", "8.8.8.8:443", true},
		{"tcp4", "127.0.0.1:443", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[::ffff:169.254.169.254]:80", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"udp4", "8.8.8.8:53", false},
		{"unix", "/var/run/docker.sock", false},
		{"tcp4", "example.com:443", false},
		{"tcp4", "8.8.8.8", false},
	}
	for _, c := range cases {
		err := p.Control(c.network, c.address, nil)
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Control(%s, %s) = %v", c.network, c.address, err)
		}
	}
}

// server is an httptest TLS server on 127.0.0.1 that counts the connections
// it accepts and the requests to /target, and redirects /redirect to
// /target and /metadata to the cloud metadata service.
type server struct {
	*httptest.Server
	conns, targets atomic.Int32
	pool           *x509.CertPool
}

func newServer(t *testing.T) *server {
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		s.targets.Add(1)
		io.WriteString(w, "target")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s.Server = httptest.NewUnstartedServer(mux)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.Certificate())
	return s
}

func (s *server) port() string {
	return strconv.Itoa(s.Listener.Addr().(*net.TCPAddr).Port)
}

func TestClientRefusesLoopback(t *testing.T) {
	s := newServer(t)
	c := Policy{}.Client(5*time.Second, s.pool)
	for _, u := range []string{
		s.URL + "/target", // https://127.0.0.1:port
		"https://localhost:" + s.port() + "/target",    // a name that resolves to loopback
		"https://[::ffff:127.0.0.1]:" + s.port() + "/", // mapped form
	} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: %s, want refused", u, resp.Status)
			continue
		}
		var ae *AddressError
		if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) {
			t.Errorf("GET %s: %v, want ErrForbiddenAddress", u, err)
		} else if !ae.Addr.Unmap().IsLoopback() {
			t.Errorf("GET %s: refused %s, want a loopback address", u, ae.Addr)
		}
	}
	if n := s.conns.Load(); n != 0 {
		t.Errorf("the server accepted %d connections", n)
	}

	// DialContext alone refuses as well.
	for _, addr := range []string{s.Listener.Addr().String(), "localhost:" + s.port()} {
		conn, err := Policy{}.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			t.Errorf("DialContext(%s) connected", addr)
		} else if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("DialContext(%s): %v", addr, err)
		}
	}
	if n := s.conns.Load(); n != 0 {
		t.Errorf("the server accepted %d connections", n)
	}
}

func TestClientAllows(t *testing.T) {
	s := newServer(t)
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for name, p := range map[string]Policy{
		"AllowPrivate": {AllowPrivate: true},
		"AllowedCIDRs": {AllowedCIDRs: loopback},
	} {
		resp, err := p.Client(5*time.Second, s.pool).Get(s.URL + "/")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Errorf("%s: %s %q", name, resp.Status, body)
		}
	}
	// A name resolving to an allowed address (plain HTTP: the test
	// certificate does not name localhost).
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") }))
	defer plain.Close()
	port := strconv.Itoa(plain.Listener.Addr().(*net.TCPAddr).Port)
	p := Policy{AllowedCIDRs: append(loopback, netip.MustParsePrefix("::1/128"))}
	resp, err := p.Client(5*time.Second, nil).Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("localhost with loopback allowed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("localhost with loopback allowed: %s", resp.Status)
	}
}

func TestClientFollowsNoRedirect(t *testing.T) {
	s := newServer(t)
	c := Policy{AllowPrivate: true}.Client(5*time.Second, s.pool)
	for path, loc := range map[string]string{
		"/redirect": "/target",
		"/metadata": "http://169.254.169.254/latest/meta-data/",
	} {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != loc {
			t.Errorf("GET %s: %s, Location %q; want the redirect itself", path, resp.Status, resp.Header.Get("Location"))
		}
	}
	if n := s.targets.Load(); n != 0 {
		t.Errorf("the redirect target was requested %d times", n)
	}
}

func TestTransport(t *testing.T) {
	s := newServer(t)
	// A base that would route around the guard: a proxy from the
	// environment and its own dialers.
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
	var d net.Dialer
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		DialTLSContext:        func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
		ResponseHeaderTimeout: 5 * time.Second,
	}
	tr := Policy{}.Transport(base)
	if tr.Proxy != nil || tr.DialTLSContext != nil || tr.DialTLS != nil || tr.Dial != nil { //nolint:staticcheck // SA1019: checking they are cleared
		t.Error("Transport kept a proxy or a dialer of its base")
	}
	if tr.ResponseHeaderTimeout != 5*time.Second || tr.TLSHandshakeTimeout != TLSHandshakeTimeout || tr.MaxResponseHeaderBytes != MaxResponseHeaderBytes {
		t.Errorf("timeouts %v, %v, %d", tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout, tr.MaxResponseHeaderBytes)
	}
	if base.Proxy == nil || base.DialTLSContext == nil {
		t.Error("Transport modified its base")
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: s.pool}
	resp, err := (&http.Client{Transport: tr}).Get(s.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET through the guarded base: %s", resp.Status)
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("GET through the guarded base: %v", err)
	}

	tr = Policy{}.Transport(nil)
	if tr.Proxy != nil || tr.TLSHandshakeTimeout != TLSHandshakeTimeout || tr.ResponseHeaderTimeout != ResponseHeaderTimeout || !tr.ForceAttemptHTTP2 {
		t.Errorf("Transport(nil) = %+v", tr)
	}
	c := Policy{}.Client(0, nil)
	if c.Timeout != DefaultClientTimeout {
		t.Errorf("Client(0).Timeout = %v", c.Timeout)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hooks", "http://127.0.0.1:8080/", "https://[::ffff:127.0.0.1]/",
		"https://[fe80::1%25eth0]:443/", "https://user@example.com/", "https://example.com:0443/#x",
		"https://0x7f000001/", "https://xn--bcher-kva.example./", "https:example.com", "//x", "",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, dev bool) {
		p := Policy{AllowPrivate: dev, AllowHTTP: dev}
		u, err := p.CheckURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) || u != nil {
				t.Fatalf("CheckURL(%q) = %v, %v", raw, u, err)
			}
			return
		}
		if len(raw) > MaxURLLength || u.User != nil || u.Hostname() == "" || strings.Contains(raw, "#") {
			t.Fatalf("CheckURL(%q) accepted %#v", raw, u)
		}
		if u.Scheme != "https" && (!dev || u.Scheme != "http") {
			t.Fatalf("CheckURL(%q) accepted scheme %q", raw, u.Scheme)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && p.CheckAddr(a) != nil {
			t.Fatalf("CheckURL(%q) accepted forbidden address %s", raw, a)
		}
	})
}

// FuzzCheckAddr checks that the IPv6 forms of an IPv4 address get the IPv4
// address's verdict, and that CheckAddr never panics.
func FuzzCheckAddr(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Add([]byte{8, 8, 8, 8})
	f.Add([]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := Policy{}.CheckAddr(a)
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("CheckAddr(%s) = %v", a, err)
		}
		if !a.Is4() {
			return
		}
		v := a.As4()
		for _, form := range []netip.Addr{
			netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v[0], 13: v[1], 14: v[2], 15: v[3]}),
			netip.AddrFrom16([16]byte{8: 0xff, 9: 0xff, 12: v[0], 13: v[1], 14: v[2], 15: v[3]}),
			netip.AddrFrom16([16]byte{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v[0], 13: v[1], 14: v[2], 15: v[3]}),
			netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: v[0], 3: v[1], 4: v[2], 5: v[3], 15: 1}),
		} {
			if got := (Policy{}).CheckAddr(form); (got == nil) != (err == nil) {
				t.Fatalf("CheckAddr(%s) = %v but CheckAddr(%s) = %v", a, err, form, got)
			}
		}
	})
}
