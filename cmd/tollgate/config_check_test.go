package main

import (
	"os"
	"strings"
	"testing"
)

// webhooks.max_failures, retired, is reported by config check but does not
// fail it.
func TestConfigCheckWarnings(t *testing.T) {
	cfg, _ := writeConfig(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, "webhooks: {max_failures: 50}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	out := must(t, "config", "check", "-c", cfg)
	if !strings.Contains(out, "warning: webhooks.max_failures (50) is deprecated and ignored") ||
		!strings.Contains(out, "webhooks.disable_after (72h0m0s)") || !strings.Contains(out, "configuration is valid") {
		t.Errorf("config check: %s", out)
	}
}
