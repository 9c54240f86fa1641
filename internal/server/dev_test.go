package server

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/demo"
)

// serve --dev: the first start prints a working login and API key, later
// starts do not create more.
func TestDevBootstrap(t *testing.T) {
	up, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(context.Background())
	dir := t.TempDir()
	environ := []string{"TOLLGATE_SERVER_LISTEN=127.0.0.1:0", "TOLLGATE_ADMIN_LISTEN=127.0.0.1:0",
		"TOLLGATE_DASHBOARD_LISTEN=127.0.0.1:0", "TOLLGATE_ADMIN_TOKEN=" + adminToken}
	cfg, err := config.Dev(dir, up.URL(), environ)
	if err != nil {
		t.Fatal(err)
	}
	boot := func() (*Server, string) {
		srv, err := New(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := srv.DevBootstrap(context.Background(), &out, adminToken); err != nil {
			t.Fatal(err)
		}
		return srv, out.String()
	}
	srv, out := boot()
	key := regexp.MustCompile(`API key:\s+(tgk_\w+)`).FindStringSubmatch(out)
	pw := regexp.MustCompile(`password:\s+(\S+)`).FindStringSubmatch(out)
	if key == nil || pw == nil || !strings.Contains(out, "WARNING: plain HTTP") {
		t.Fatalf("banner:\n%s", out)
	}
	base := "http://" + srv.Addr()
	r := do(t, "GET", base+"/v1/hello", nil, "X-API-KEY", key[1])
	if r.Status != 200 || !strings.Contains(string(r.Body), "Hello from the Tollgate demo upstream") ||
		!strings.Contains(string(r.Body), `"credential": "key_`) {
		t.Fatalf("demo upstream through the gateway: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", base+"/api/v1/auth/email/login", map[string]string{"email": DevEmail, "password": pw[1]}); r.Status != 200 {
		t.Fatalf("printed login: %d %s", r.Status, r.Body)
	}
	// The dashboard is on its own listener, whose address the banner gives.
	dash := regexp.MustCompile(`Dashboard:\s+(http://\S+/dashboard/)`).FindStringSubmatch(out)
	if dash == nil || dash[1] != "http://"+srv.DashboardAddr()+"/dashboard/" {
		t.Fatalf("the banner's dashboard %q, listening on %s:\n%s", dash, srv.DashboardAddr(), out)
	}
	if r := do(t, "GET", dash[1]+"login", nil); r.Status != 200 || !strings.Contains(string(r.Body), `name="csrf"`) {
		t.Fatalf("the printed dashboard: %d", r.Status)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	srv, out = boot()
	defer srv.Shutdown(context.Background())
	if strings.Contains(out, "tgk_") || !strings.Contains(out, "tollgate apikey create --dev") {
		t.Fatalf("second start:\n%s", out)
	}
	if r := do(t, "GET", "http://"+srv.Addr()+"/v1/hello", nil, "X-API-KEY", key[1]); r.Status != 200 {
		t.Fatalf("first key after restart: %d", r.Status)
	}
}
