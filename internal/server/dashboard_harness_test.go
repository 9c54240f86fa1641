package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// dashClient is a browser-like client of the dashboard: a cookie jar, no
// redirects followed unless asked, forms posted with the CSRF token of the
// last page that had one, and the Origin of the dashboard.
type dashClient struct {
	t    *testing.T
	n    *node
	base string // the dashboard's origin
	http *http.Client
	// token is the CSRF token of the last page that carried one.
	token string
}

// page is an answered dashboard request.
type page struct {
	Status   int
	Header   http.Header
	Body     string
	Location string // of a redirect
}

func newDashClient(t *testing.T, n *node) *dashClient {
	t.Helper()
	if n.dash == "" {
		t.Fatal("the node has no dashboard listener: start it on dashYAML")
	}
	return newDashClientAt(t, n, n.dash)
}

// newDashClientAt is a client of the dashboard at base (its origin); with
// dialTo, every connection goes to that address whatever base's host, as
// when a host name resolves to the node.
func newDashClientAt(t *testing.T, n *node, base string, dialTo ...string) *dashClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(dialTo) > 0 {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dialTo[0])
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &dashClient{t: t, n: n, base: base, http: &http.Client{
		Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var reCSRFField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (c *dashClient) do(req *http.Request) page {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if m := reCSRFField.FindSubmatch(b); m != nil {
		c.token = string(m[1])
	}
	return page{Status: res.StatusCode, Header: res.Header, Body: string(b), Location: res.Header.Get("Location")}
}

// get fetches a dashboard path ("/dashboard/keys").
func (c *dashClient) get(path string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// csrf returns the CSRF token of the last page that had one.
func (c *dashClient) csrf() string { return c.token }

// cookie returns the value of the jar's cookie name for the dashboard.
func (c *dashClient) cookie(name string) string {
	u, _ := url.Parse(c.base + "/dashboard/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// post submits a form to a dashboard path, with the CSRF token.
func (c *dashClient) post(path string, form url.Values) page {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf())
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	return c.do(req)
}

// dashLogin registers email (if needed, activating it through the admin API)
// and logs in through the dashboard's login form; it leaves the client on
// the overview, with the session's CSRF token.
func dashLogin(t *testing.T, n *node, email, org string) *dashClient {
	t.Helper()
	return dashLoginWith(t, newDashClient(t, n), email, org)
}

// dashLoginWith is dashLogin with the client c.
func dashLoginWith(t *testing.T, c *dashClient, email, org string) *dashClient {
	t.Helper()
	n := c.n
	c.get("/dashboard/register")
	p := c.post("/dashboard/register", url.Values{
		"email": {email}, "organization": {org}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"},
	})
	if p.Status != http.StatusAccepted {
		t.Fatalf("register: %d %s", p.Status, p.Body)
	}
	if r := n.adminDo("POST", "/admin/v1/users/"+email+"/activate", nil); r.Status != 200 {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	return dashLogIn(t, c, email)
}

// dashLogIn logs c in as email, an active user: a new session.
func dashLogIn(t *testing.T, c *dashClient, email string) *dashClient {
	t.Helper()
	c.get("/dashboard/login")
	p := c.post("/dashboard/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/overview" {
		t.Fatalf("login: %d %s %s", p.Status, p.Location, p.Body)
	}
	if p := c.get("/dashboard/overview"); p.Status != http.StatusOK {
		t.Fatalf("overview after login: %d %s", p.Status, p.Body)
	}
	return c
}
