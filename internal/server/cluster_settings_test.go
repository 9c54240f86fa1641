package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/testsvc"
)

// startErr builds a node on yaml and returns why it cannot: the
// configuration's error or New's; nil when it can (and then stops it).
func startErr(t *testing.T, yaml string) error {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		return err
	}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		return err
	}
	_ = srv.Close()
	return nil
}

// Two nodes on one PostgreSQL schema, behind one public URL: an OAuth
// access token and a dashboard session issued by one are accepted by the
// other. A third node whose issuer or audience differs from the ones the
// first node recorded refuses to start, naming the setting to change; one
// without server.public_url refuses too, before touching the store.
func TestClusterTokenIssuer(t *testing.T) {
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)
	rec := newRecorder(t, nil)
	yaml := sharedYAML(pgURL, schema, redisURL, prefix, fmt.Sprintf(`
routes:
  - path: /v1/
    upstream: %s
`, rec.URL))
	a := start(t, yaml, nil)
	b := start(t, yaml, nil)

	session := a.account("issuer@example.com", "Issuer Co")
	if r := do(t, "GET", b.base+"/api/v1/me", nil, bearer(session)...); r.Status != 200 {
		t.Fatalf("node B, a dashboard session from node A: %d %s", r.Status, r.Body)
	}
	token := a.accessToken(a.createApp(session, nil), "")
	for _, n := range []*node{a, b} {
		if r := do(t, "GET", n.base+"/v1/hello", nil, bearer(token)...); r.Status != 200 {
			t.Fatalf("%s, an access token from node A: %d %s", n.base, r.Status, r.Body)
		}
	}
	meta := do(t, "GET", b.base+"/.well-known/oauth-authorization-server", nil).json(t)
	if meta["issuer"] != clusterURL {
		t.Errorf("node B's metadata: issuer %v, want %s", meta["issuer"], clusterURL)
	}

	for _, tt := range []struct {
		name, yaml string
		settings   []string // the settings the error must name, in order
	}{
		{"another public_url", strings.Replace(yaml, clusterURL, "http://node-c.tollgate.test", 1), []string{
			`auth.issuer is "http://node-c.tollgate.test" on this node but "` + clusterURL + `" on the cluster`,
			"set server.public_url (from which auth.issuer is derived) as on the other nodes",
			`auth.audience is "http://node-c.tollgate.test" on this node`,
			"set server.public_url (from which auth.audience is derived)",
		}},
		{"another auth.issuer", yaml + "auth:\n  issuer: https://issuer.example.com\n", []string{
			`auth.issuer is "https://issuer.example.com" on this node but "` + clusterURL + `"`,
			"set auth.issuer as on the other nodes",
		}},
	} {
		err := startErr(t, tt.yaml)
		if !errors.Is(err, ErrClusterSettings) {
			t.Fatalf("%s: %v, want ErrClusterSettings", tt.name, err)
		}
		var mismatch *SettingMismatchError
		if !errors.As(err, &mismatch) || mismatch.Recorded.Value != clusterURL {
			t.Errorf("%s: %v, want a *SettingMismatchError", tt.name, err)
		}
		msg, at := err.Error(), 0
		for _, want := range tt.settings {
			i := strings.Index(msg[at:], want)
			if i < 0 {
				t.Errorf("%s: %q not in\n%s", tt.name, want, msg)
				break
			}
			at += i + len(want)
		}
		if tt.name == "another auth.issuer" && strings.Contains(msg, "auth.audience") {
			t.Errorf("%s: the audience, which agrees, is named: %s", tt.name, msg)
		}
		if !strings.Contains(msg, "tollgate config record-issuer") {
			t.Errorf("%s: no way out in %s", tt.name, msg)
		}
	}

	noURL := strings.Replace(yaml, "  public_url: "+clusterURL+"\n", "", 1)
	if err := startErr(t, noURL); err == nil || !strings.Contains(err.Error(), "server.public_url is required with storage.type postgres") {
		t.Errorf("a node without public_url: %v", err)
	}
	// The recorded settings did not move: node A's tokens still pass on a
	// node that agrees.
	c := start(t, yaml, nil)
	if r := do(t, "GET", c.base+"/v1/hello", nil, bearer(token)...); r.Status != 200 {
		t.Fatalf("node C, an access token from node A: %d %s", r.Status, r.Body)
	}
}

// RecordClusterSettings moves a cluster to a new issuer: nodes with the
// old one are then refused, nodes with the new one start.
func TestRecordClusterSettings(t *testing.T) {
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)
	yaml := sharedYAML(pgURL, schema, redisURL, prefix, "")
	a := start(t, yaml, nil)
	a.stop()
	moved := strings.Replace(yaml, clusterURL, "https://api.example.com", 1)
	if err := startErr(t, moved); !errors.Is(err, ErrClusterSettings) {
		t.Fatalf("before the new issuer is recorded: %v", err)
	}
	cfg, err := config.Parse([]byte(moved), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.Context(), cfg, clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if unrecorded, err := CompareClusterSettings(t.Context(), st, cfg); !errors.Is(err, ErrClusterSettings) || len(unrecorded) != 0 {
		t.Fatalf("compare before: %v, %v", unrecorded, err)
	}
	if err := RecordClusterSettings(t.Context(), st, cfg, store.Actor{Type: store.ActorCLI, ID: "operator"}); err != nil {
		t.Fatal(err)
	}
	if unrecorded, err := CompareClusterSettings(t.Context(), st, cfg); err != nil || len(unrecorded) != 0 {
		t.Fatalf("compare after: %v, %v", unrecorded, err)
	}
	if err := startErr(t, moved); err != nil {
		t.Errorf("a node with the new issuer: %v", err)
	}
	if err := startErr(t, yaml); !errors.Is(err, ErrClusterSettings) {
		t.Errorf("a node with the old issuer: %v", err)
	}
}
