package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/secretbox"
)

type keysList struct {
	Data []struct {
		ID        string     `json:"id"`
		Algorithm string     `json:"algorithm"`
		Status    string     `json:"status"`
		CreatedAt time.Time  `json:"created_at"`
		RetiredAt *time.Time `json:"retired_at"`
	} `json:"data"`
}

func listKeys(t *testing.T, cfg string) keysList {
	t.Helper()
	out := must(t, "keys", "list", "--json", "-c", cfg)
	var l keysList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return l
}

func TestKeysRotateAndList(t *testing.T) {
	cfg, db := writeConfig(t)

	// Listing a fresh store creates nothing: no master key, no signing key.
	if l := listKeys(t, cfg); len(l.Data) != 0 {
		t.Fatalf("fresh store lists %+v", l.Data)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(db), "master.key")); !os.IsNotExist(err) {
		t.Fatalf("keys list created the master key: %v", err)
	}

	// The first rotation generates the first key (as serve would) and
	// rotates away from it.
	out := must(t, "keys", "rotate", "-c", cfg)
	for _, want := range []string{"new signing key: sig_", "retired: sig_", "1 minute", "stay valid until they expire"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rotate output lacks %q:\n%s", want, out)
		}
	}
	l := listKeys(t, cfg)
	if len(l.Data) != 2 || l.Data[0].Status != "retired" || l.Data[0].RetiredAt == nil ||
		l.Data[1].Status != "signing" || l.Data[1].RetiredAt != nil || l.Data[1].Algorithm != "RS256" {
		t.Fatalf("after first rotation: %+v", l.Data)
	}
	if !strings.Contains(out, "new signing key: "+l.Data[1].ID) || !strings.Contains(out, "retired: "+l.Data[0].ID) {
		t.Fatalf("rotate printed other IDs than list:\n%s\n%+v", out, l.Data)
	}
	signing := l.Data[1].ID

	out = must(t, "keys", "rotate", "--json", "-c", cfg)
	var r struct {
		KeyID   string   `json:"key_id"`
		Retired []string `json:"retired"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.KeyID == "" || r.KeyID == signing || len(r.Retired) != 1 || r.Retired[0] != signing {
		t.Fatalf("second rotation: %+v, was signing %s", r, signing)
	}

	l = listKeys(t, cfg)
	if len(l.Data) != 3 || l.Data[1].ID != signing || l.Data[1].Status != "retired" ||
		l.Data[2].ID != r.KeyID || l.Data[2].Status != "signing" {
		t.Fatalf("after second rotation: %+v", l.Data)
	}
	for i := 1; i < len(l.Data); i++ {
		if l.Data[i].CreatedAt.Before(l.Data[i-1].CreatedAt) {
			t.Fatalf("not oldest first: %+v", l.Data)
		}
	}

	// The store agrees.
	stored, err := openStore(t, db).ListSigningKeys(context.Background())
	if err != nil || len(stored) != 3 || !stored[2].RetiredAt.IsZero() || stored[1].RetiredAt.IsZero() {
		t.Fatalf("stored = %+v, %v", stored, err)
	}

	out = must(t, "keys", "list", "-c", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "KID") || !strings.Contains(lines[0], "STATUS") ||
		!strings.Contains(lines[3], r.KeyID) || !strings.HasSuffix(lines[3], "signing") ||
		!strings.HasSuffix(lines[1], "retired") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestKeysErrors(t *testing.T) {
	cfg, _ := writeConfig(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "rotate"}, "no configuration"},
		{[]string{"keys", "list", "--dev", "-c", cfg}, "not both"},
		{[]string{"keys", "rotate", "extra", "-c", cfg}, "unknown command"},
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

func TestSecretsGenerateKey(t *testing.T) {
	out := strings.TrimSpace(must(t, "secrets", "generate-key"))
	key, err := secretbox.ParseKey(out)
	if err != nil || len(key) != 32 {
		t.Fatalf("generate-key printed %q: %v", out, err)
	}
	if again := strings.TrimSpace(must(t, "secrets", "generate-key")); again == out {
		t.Fatal("two calls printed the same key")
	}
}

// Master-key rotation: the new key with the old one as previous, a reseal,
// then the old key can go.
func TestSecretsReseal(t *testing.T) {
	cfg, _ := writeConfig(t)
	must(t, "keys", "rotate", "-c", cfg) // two signing keys sealed under the first master key
	yaml, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := "dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY="
	newKey := strings.TrimSpace(must(t, "secrets", "generate-key"))
	rotated := strings.Replace(string(yaml), "master_key: "+oldKey, "master_key: "+newKey+"\n  previous_master_keys: ["+oldKey+"]", 1)
	if err := os.WriteFile(cfg, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must(t, "secrets", "reseal", "-c", cfg); !strings.Contains(out, "resealed 2 token signing keys") {
		t.Fatalf("reseal: %s", out)
	}
	if out := must(t, "secrets", "reseal", "-c", cfg); !strings.Contains(out, "resealed 0 token signing keys") {
		t.Fatalf("second reseal: %s", out)
	}
	onlyNew := strings.Replace(string(yaml), "master_key: "+oldKey, "master_key: "+newKey, 1)
	if err := os.WriteFile(cfg, []byte(onlyNew), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must(t, "keys", "list", "-c", cfg); !strings.Contains(out, "signing") {
		t.Fatalf("keys under the new master key alone: %s", out)
	}
}

// TestResponseKeys: keys --responses rotates and lists the secp256k1 keys
// that sign responses, apart from the RSA keys that sign tokens.
func TestResponseKeys(t *testing.T) {
	cfg, _ := writeConfig(t)
	list := func() keysList {
		out := must(t, "keys", "list", "--responses", "--json", "-c", cfg)
		var l keysList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return l
	}
	if l := list(); len(l.Data) != 0 {
		t.Fatalf("fresh store lists %+v", l.Data)
	}
	must(t, "keys", "rotate", "-c", cfg) // the token keys
	out := must(t, "keys", "rotate", "--responses", "-c", cfg)
	if !strings.Contains(out, "new response signing key: sig_") || !strings.Contains(out, "retired_key_grace") {
		t.Fatalf("rotate --responses:\n%s", out)
	}
	l := list()
	if len(l.Data) != 2 || l.Data[0].Status != "retired" || l.Data[1].Status != "signing" || l.Data[1].Algorithm != "ES256K" {
		t.Fatalf("response keys after a rotation: %+v", l.Data)
	}
	for _, k := range listKeys(t, cfg).Data {
		if k.Algorithm != "RS256" {
			t.Fatalf("keys list shows a response key: %+v", k)
		}
	}
	if n := len(listKeys(t, cfg).Data); n != 2 {
		t.Fatalf("%d token keys, want 2 (one rotation)", n)
	}
}
