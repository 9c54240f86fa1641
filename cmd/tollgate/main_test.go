package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apikey"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// run executes the CLI in-process and returns what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, nil)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeConfig writes the foundation issue's configuration with the database
// in a temporary directory.
func writeConfig(t *testing.T) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "tollgate.db")
	cfgPath = filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`server:
  listen: 127.0.0.1:8080
  insecure_http: true
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: http://127.0.0.1:9000
    units: 1
`, dbPath)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

func openStore(t *testing.T, dbPath string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestUserActivate(t *testing.T) {
	cfg, db := writeConfig(t)
	must(t, "config", "check", "-c", cfg) // creates nothing, but proves the file is valid
	st := openStore(t, db)
	now := time.Now()
	org := store.Organization{ID: ids.New(ids.Organization), Name: "Pending Co", Slug: "pending-co", CreatedAt: now}
	u := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: "new@example.com", PasswordHash: "x",
		Role: store.RoleOwner, Status: store.UserPending, CreatedAt: now}
	if err := st.CreateOrganizationWithOwner(context.Background(), org, u, store.AuditEntry{Action: "user.register"}); err != nil {
		t.Fatal(err)
	}

	if out := must(t, "user", "list", "--status", "pending", "-c", cfg); !strings.Contains(out, "new@example.com") {
		t.Fatalf("pending list: %s", out)
	}
	if out := must(t, "user", "activate", "NEW@example.com", "-c", cfg); !strings.Contains(out, "is now active") {
		t.Fatalf("activate: %s", out)
	}
	got, err := st.GetUser(context.Background(), u.ID)
	if err != nil || got.Status != store.UserActive {
		t.Fatalf("status %q %v", got.Status, err)
	}
	entries, _ := st.ListAudit(context.Background(), store.AuditFilter{TargetID: u.ID})
	if len(entries) == 0 || entries[0].Action != "user.activate" || entries[0].ActorType != store.ActorCLI {
		t.Fatalf("audit: %+v", entries)
	}
	if _, err := run(t, "user", "activate", "nobody@example.com", "-c", cfg); err == nil {
		t.Fatal("activating an unknown user succeeded")
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	cfg, db := writeConfig(t)
	out := must(t, "user", "create", "ops@example.com", "--org-name", "Ops Team", "-c", cfg)
	if !strings.Contains(out, "slug ops-team") || !strings.Contains(out, "password (shown once)") {
		t.Fatalf("user create: %s", out)
	}
	out = must(t, "apikey", "create", "--org", "ops-team", "--name", "ci", "--scopes", "kyt.read,webhook.read",
		"--ip-allowlist", "203.0.113.50, 198.51.100.0/24", "--expires-in", "90d", "--json", "-c", cfg)
	var created struct {
		ID, Key, Prefix string
		Scopes          []string
		IPAllowlist     []string   `json:"ip_allowlist"`
		ExpiresAt       *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !apikey.Valid(created.Key) || len(created.Scopes) != 2 || len(created.IPAllowlist) != 2 || created.ExpiresAt == nil {
		t.Fatalf("created: %+v", created)
	}
	if d := time.Until(*created.ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("expires in %v", d)
	}
	// Only the hash is stored.
	st := openStore(t, db)
	k, err := st.GetAPIKey(context.Background(), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := apikey.Hash(created.Key)
	if string(k.Hash) != string(h[:]) {
		t.Fatal("stored hash differs")
	}

	out = must(t, "apikey", "list", "--org", "ops-team", "-c", cfg)
	if !strings.Contains(out, created.Prefix) || strings.Contains(out, created.Key) {
		t.Fatalf("list: %s", out)
	}
	must(t, "apikey", "revoke", "--org", "ops-team", created.ID, "-c", cfg)
	if out := must(t, "apikey", "list", "--org", "ops-team", "-c", cfg); !strings.Contains(out, "revoked") {
		t.Fatalf("after revoke: %s", out)
	}
}

func TestCLIErrors(t *testing.T) {
	cfg, _ := writeConfig(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "no configuration"},
		{[]string{"apikey", "create", "--org", "x", "-c", cfg}, `"name" not set`},
		{[]string{"apikey", "create", "--org", "missing", "--name", "k", "-c", cfg}, "no such organization"},
		{[]string{"apikey", "create", "--org", "x", "--name", "k", "--expires-in", "soon", "-c", cfg}, ""},
		{[]string{"user", "list", "--dev", "-c", cfg}, "not both"},
		{[]string{"config", "check", "-c", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
	}
	for _, tt := range tests {
		out, err := run(t, tt.args...)
		if err == nil {
			t.Errorf("%v succeeded: %s", tt.args, out)
			continue
		}
		if msg := err.Error() + out; !strings.Contains(msg, tt.want) {
			t.Errorf("%v: %q lacks %q", tt.args, msg, tt.want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in, at string
		want   time.Time
		ok     bool
	}{
		{"", "", time.Time{}, true},
		{"90d", "", now.AddDate(0, 0, 90), true},
		{"36h", "", now.Add(36 * time.Hour), true},
		{"", "2027-06-01T00:00:00Z", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), true},
		{"0d", "", time.Time{}, false},
		{"-5h", "", time.Time{}, false},
		{"1d", "2027-06-01T00:00:00Z", time.Time{}, false},
		{"", "June", time.Time{}, false},
	} {
		got, err := parseExpiry(tt.in, tt.at, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseExpiry(%q, %q) = %v, %v", tt.in, tt.at, got, err)
		}
	}
}

func TestOrgSetPlan(t *testing.T) {
	cfg, _ := writeConfig(t)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plans := "plans:\n  - name: free\n    rate: {requests_per_second: 5, burst: 10}\n    quota: {units: 10000, period: month}\ndefault_plan: free\n"
	if err := os.WriteFile(cfg, append(raw, plans...), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, "user", "create", "ops@example.com", "--org-name", "Ops Team", "-c", cfg)
	if out := must(t, "org", "set-plan", "ops-team", "free", "-c", cfg); !strings.Contains(out, "now on plan free") {
		t.Fatalf("set-plan: %s", out)
	}
	if out := must(t, "org", "list", "-c", cfg); !strings.Contains(out, "free") {
		t.Fatalf("org list: %s", out)
	}
	if _, err := run(t, "org", "set-plan", "ops-team", "gold", "-c", cfg); err == nil || !strings.Contains(err.Error(), `no plan "gold"`) {
		t.Fatalf("unknown plan: %v", err)
	}
}

func TestAPIKeySetPlan(t *testing.T) {
	cfg, dbPath := writeConfig(t)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plans := "plans:\n  - name: free\n    quota: {units: 100, period: month}\n  - name: partner\n    quota: {units: 100000, period: month}\ndefault_plan: free\n"
	if err := os.WriteFile(cfg, append(raw, plans...), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, "user", "create", "p@example.com", "--org-name", "Partner Co", "-c", cfg)
	out := must(t, "apikey", "create", "--org", "partner-co", "--name", "big", "--json", "-c", cfg)
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out := must(t, "apikey", "set-plan", "--org", "partner-co", created.ID, "partner", "-c", cfg); !strings.Contains(out, "now on plan partner") {
		t.Fatalf("set-plan: %s", out)
	}
	st := openStore(t, dbPath)
	if k, err := st.GetAPIKey(context.Background(), created.ID); err != nil || k.Plan != "partner" {
		t.Fatalf("stored key: %+v %v", k, err)
	}
	for _, bad := range [][]string{
		{"apikey", "set-plan", "--org", "partner-co", created.ID, "gold"},               // no such plan
		{"apikey", "set-plan", "--org", "partner-co", "key_nope", "partner"},            // no such key
		{"apikey", "set-plan", "--org", "partner-co", created.ID},                       // plan missing
		{"apikey", "set-plan", "--org", "partner-co", "--clear", created.ID, "partner"}, // both
	} {
		if _, err := run(t, append(bad, "-c", cfg)...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if out := must(t, "apikey", "set-plan", "--org", "partner-co", "--clear", created.ID, "-c", cfg); !strings.Contains(out, "back on its organization's plan") {
		t.Fatalf("--clear: %s", out)
	}
	if k, _ := st.GetAPIKey(context.Background(), created.ID); k.Plan != "" {
		t.Fatalf("plan after --clear: %q", k.Plan)
	}
}

// TestCLIEvents: a key created or revoked with the CLI is an event in the
// webhook outbox, for the server's dispatcher to deliver.
func TestCLIEvents(t *testing.T) {
	cfg, db := writeConfig(t)
	must(t, "user", "create", "hooks@example.com", "--org-name", "Hooks Co", "-c", cfg)
	st := openStore(t, db)
	ctx := context.Background()
	org, err := st.GetOrganizationBySlug(ctx, "hooks-co")
	if err != nil {
		t.Fatal(err)
	}
	ep := store.WebhookEndpoint{
		ID: ids.New(ids.WebhookEndpoint), OrgID: org.ID, URL: "https://hooks.example.com/x",
		EventTypes: []string{"*"}, Secret: []byte("sealed"), CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
	if err := st.CreateWebhookEndpoint(ctx, ep, store.AuditEntry{OrgID: org.ID, ActorType: store.ActorCLI, Action: "webhook.create", TargetType: "webhook", TargetID: ep.ID}); err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(must(t, "apikey", "create", "--org", "hooks-co", "--name", "ci", "--json", "-c", cfg)), &created); err != nil {
		t.Fatal(err)
	}
	must(t, "apikey", "revoke", "--org", "hooks-co", created.ID, "-c", cfg)
	ds, err := st.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, d := range ds {
		types = append(types, d.EventType)
		if !strings.Contains(string(d.Payload), created.ID) {
			t.Errorf("%s does not name the key: %s", d.EventType, d.Payload)
		}
	}
	if strings.Join(types, ",") != "apikey.revoked,apikey.created" {
		t.Fatalf("outbox: %v", types)
	}
}

// TestOrgDisableCLI: `tollgate org disable` needs a reason, audits it, shows
// the organization disabled in `org list`; `org enable` restores it.
func TestOrgDisableCLI(t *testing.T) {
	cfg, dbPath := writeConfig(t)
	must(t, "user", "create", "ops@example.com", "--org-name", "Ops Team", "-c", cfg)
	if _, err := run(t, "org", "disable", "ops-team", "-c", cfg); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("disable without --reason: %v", err)
	}
	if _, err := run(t, "org", "disable", "no-such-org", "--reason", "x", "-c", cfg); err == nil {
		t.Fatal("disabling an unknown organization succeeded")
	}
	out := must(t, "org", "disable", "ops-team", "--reason", "unpaid invoices", "-c", cfg)
	if !strings.Contains(out, "is now disabled") || !strings.Contains(out, "cache TTL") {
		t.Fatalf("disable: %s", out)
	}
	if out := must(t, "org", "list", "-c", cfg); !strings.Contains(out, "disabled") {
		t.Fatalf("org list after disable: %s", out)
	}
	st := openStore(t, dbPath)
	org, err := st.GetOrganizationBySlug(context.Background(), "ops-team")
	if err != nil || !org.Disabled() || org.DisabledReason != "unpaid invoices" {
		t.Fatalf("stored: %+v, %v", org, err)
	}
	entries, err := st.ListAudit(context.Background(), store.AuditFilter{OrgID: org.ID, Actions: []string{"org.disable"}})
	if err != nil || len(entries) != 1 || entries[0].ActorType != store.ActorCLI || entries[0].Details["reason"] != "unpaid invoices" {
		t.Fatalf("audit: %+v, %v", entries, err)
	}
	if out := must(t, "org", "enable", "ops-team", "--json", "-c", cfg); !strings.Contains(out, `"status": "active"`) {
		t.Fatalf("enable: %s", out)
	}
}
