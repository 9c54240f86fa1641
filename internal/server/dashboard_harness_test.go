package server

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// dashClient is a browser-like client of the dashboard: a cookie jar, no
// redirects followed unless asked, forms posted with the CSRF token from
// the jar.
type dashClient struct {
	t    *testing.T
	n    *node
	http *http.Client
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
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &dashClient{t: t, n: n, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

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
	return page{Status: res.StatusCode, Header: res.Header, Body: string(b), Location: res.Header.Get("Location")}
}

// get fetches a dashboard path ("/dashboard/keys").
func (c *dashClient) get(path string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.n.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// csrf returns the CSRF token the jar holds; a GET of any page sets one.
func (c *dashClient) csrf() string {
	u, _ := url.Parse(c.n.base + "/dashboard/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "tg_csrf" {
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
	if form.Get("csrf") == "" {
		form.Set("csrf", c.csrf())
	}
	req, err := http.NewRequest(http.MethodPost, c.n.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.n.base)
	return c.do(req)
}

// dashLogin registers email (if needed, activating it through the admin API)
// and logs in through the dashboard's login form.
func dashLogin(t *testing.T, n *node, email, org string) *dashClient {
	t.Helper()
	c := newDashClient(t, n)
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
	p = c.post("/dashboard/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/overview" {
		t.Fatalf("login: %d %s %s", p.Status, p.Location, p.Body)
	}
	return c
}
