package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

func TestSubscriptionList(t *testing.T) {
	cfg, dbPath := writeConfig(t)
	if out := must(t, "subscription", "list", "-c", cfg); strings.Count(out, "\n") != 1 {
		t.Fatalf("no subscriptions: %q, want the header alone", out)
	}
	st, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, p := range []store.Payment{
		{Wallet: "eip155:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", Authorization: "a1", Plan: "pro", Time: now},
		{Wallet: "solana:9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", Authorization: "a2", Plan: "pro", Time: now.Add(-48 * time.Hour)},
	} {
		if _, err := st.Purchase(t.Context(), p, 24*time.Hour, store.AuditEntry{Action: "subscription.purchase"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := must(t, "subscription", "list", "-c", cfg)
	for _, want := range []string{"eip155:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "active", "solana:9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", "expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("subscription list lacks %q:\n%s", want, out)
		}
	}
	var list struct {
		Data []subscriptionView `json:"data"`
	}
	if err := json.Unmarshal([]byte(must(t, "subscription", "list", "--json", "-c", cfg)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 2 || list.Data[0].Status != "active" || list.Data[1].Status != "expired" || list.Data[0].OrganizationID == "" {
		t.Errorf("subscription list --json: %+v", list.Data)
	}
}
