// Package ids makes opaque, prefixed identifiers for stored objects, such as
// "org_3kq7d5m2x9v4c8h6b1n0p2r5ta". The prefix names the kind of object so that
// an identifier pasted into the wrong place is easy to spot; the rest is 128
// bits from crypto/rand in lowercase base32 (no padding), which is safe in
// URLs, file names and log lines.
//
// Identifiers are not secrets: they are shown in APIs and logs.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// Prefixes of the kinds of objects Tollgate stores.
const (
	Organization = "org"
	User         = "usr"
	App          = "app"
	Client       = "client"
	APIKey       = "key"
	SigningKey   = "sig"
	RefreshToken = "rft"
	Family       = "fam"
	Audit        = "aud"
	Request      = "req"
	UsageBatch   = "batch"
	Payment      = "pay"
	// Webhooks: an endpoint, an event (its ID is the Standard Webhooks
	// "webhook-id", the same for every endpoint and attempt), and a delivery
	// of an event to an endpoint.
	WebhookEndpoint = "wh"
	WebhookEvent    = "msg"
	WebhookDelivery = "dlv"
)

var encoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// New returns prefix + "_" + 26 random base32 characters. It panics only if
// the system's random source fails, which crypto/rand documents never happens
// on supported platforms.
func New(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	sb.Grow(len(prefix) + 1 + 26)
	sb.WriteString(prefix)
	sb.WriteByte('_')
	sb.WriteString(encoding.EncodeToString(b[:]))
	return sb.String()
}

// Valid reports whether s looks like an identifier made by New with the given
// prefix. It checks the shape only, not that the object exists.
func Valid(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte("0123456789abcdefghjkmnpqrstvwxyz", rest[i]) < 0 {
			return false
		}
	}
	return true
}
