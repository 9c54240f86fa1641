package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/testsvc"
)

// In cluster mode the CLI refuses a node without server.public_url (config
// check and serve alike), and with --store compares a node's issuer and
// audience with the ones the cluster's first node recorded; serve refuses
// a node that differs, naming the setting; config record-issuer moves the
// cluster to a new issuer.
func TestClusterIssuerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	pgURL, schema := testsvc.PostgresSchema(t)
	dir := t.TempDir()
	write := func(name, publicURL string) (path, base string) {
		listen := freePort(t)
		line := ""
		if publicURL != "" {
			line = "\n  public_url: " + publicURL
		}
		yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true%s
storage:
  type: postgres
  postgres: {url: "%s", schema: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
log:
  access_log: false
`, listen, line, pgURL, schema)
		path = filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, "http://" + listen
	}
	wantErr := func(what string, err error, out string, wants ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded: %s", what, out)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", what, err, w)
			}
		}
	}

	none, _ := write("none", "")
	for _, args := range [][]string{{"config", "check"}, {"config", "check", "--store"}, {"serve"}} {
		out, err := run(t, append(args, "-c", none)...)
		wantErr(strings.Join(args, " ")+" without public_url", err, out,
			"server.public_url is required with storage.type postgres (cluster mode)", "Two nodes on PostgreSQL and Redis")
	}

	a, baseA := write("a", "https://api.example.com")
	if out := must(t, "config", "check", "--store", "-c", a); !strings.Contains(out, "auth.issuer is not recorded in the store yet") ||
		!strings.Contains(out, "configuration is valid") {
		t.Errorf("config check --store before any node: %s", out)
	}
	serveProcess(t, a, baseA) // the first node records its issuer and audience
	if out := must(t, "config", "check", "--store", "-c", a); strings.Contains(out, "not recorded") {
		t.Errorf("config check --store after the first node: %s", out)
	}

	b, _ := write("b", "https://b.example.com")
	must(t, "config", "check", "-c", b) // alone, the file is valid
	for _, args := range [][]string{{"config", "check", "--store"}, {"serve"}} {
		out, err := run(t, append(args, "-c", b)...)
		wantErr(strings.Join(args, " ")+" with another public_url", err, out,
			`auth.issuer is "https://b.example.com" on this node but "https://api.example.com" on the cluster`,
			"set server.public_url (from which auth.issuer is derived) as on the other nodes",
			"tollgate config record-issuer")
	}

	out := must(t, "config", "record-issuer", "-c", b)
	if !strings.Contains(out, "auth.issuer recorded for the cluster: https://b.example.com") {
		t.Errorf("record-issuer: %s", out)
	}
	must(t, "config", "check", "--store", "-c", b)
	out, err := run(t, "config", "check", "--store", "-c", a)
	wantErr("config check --store of the former issuer", err, out, `auth.issuer is "https://api.example.com" on this node`)
}
