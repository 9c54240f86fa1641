package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// TestColumns: the decoders read what the encoders write, as both drivers
// hand it over (int64 or nil for times, string or []byte for JSON and
// blobs), never nil slices or maps, and refuse what they cannot read.
func TestColumns(t *testing.T) {
	at := time.Date(2025, time.June, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	var got time.Time
	if err := TimeCol(&got).Scan(Micros(at)); err != nil || !got.Equal(at.Truncate(time.Microsecond)) || got.Location() != time.UTC {
		t.Errorf("time round trip: %v, %v; want %v in UTC", got, err, at.Truncate(time.Microsecond))
	}
	if err := TimeCol(&got).Scan(Micros(time.Time{})); err != nil || !got.IsZero() {
		t.Errorf("zero time round trip: %v, %v", got, err)
	}
	if err := TimeCol(&got).Scan("12"); err == nil {
		t.Error("time column read a string")
	}

	for _, src := range []any{JSONList([]string{"a", "b"}), []byte(JSONList([]string{"a", "b"}))} {
		var ss []string
		if err := ListCol(&ss).Scan(src); err != nil || !slices.Equal(ss, []string{"a", "b"}) {
			t.Errorf("list from %T: %q, %v", src, ss, err)
		}
	}
	for _, src := range []any{nil, JSONList(nil), "null"} {
		var ss []string
		if err := ListCol(&ss).Scan(src); err != nil || ss == nil || len(ss) != 0 {
			t.Errorf("list from %#v: %#v, %v; want empty, not nil", src, ss, err)
		}
	}
	var m map[string]string
	if err := ObjectCol(&m).Scan(JSONObject(map[string]string{"k": "v"})); err != nil || m["k"] != "v" || len(m) != 1 {
		t.Errorf("object round trip: %v, %v", m, err)
	}
	if err := ObjectCol(&m).Scan([]byte(JSONObject(nil))); err != nil || m == nil || len(m) != 0 {
		t.Errorf("empty object: %#v, %v; want empty, not nil", m, err)
	}

	buf := []byte("sealed")
	var b []byte
	if err := BlobCol(&b).Scan(buf); err != nil || string(b) != "sealed" {
		t.Errorf("blob: %q, %v", b, err)
	}
	buf[0] = 'X'
	if string(b) != "sealed" {
		t.Error("blob column aliases the driver's buffer")
	}
	if err := BlobCol(&b).Scan(nil); err != nil || b == nil || len(b) != 0 {
		t.Errorf("NULL blob: %#v, %v; want empty, not nil", b, err)
	}
	if Blob(nil) == nil || NullBlob([]byte{}) != nil {
		t.Error("Blob(nil) is nil, or NullBlob of an empty slice is not NULL")
	}
}

func TestCeilMicros(t *testing.T) {
	at := time.UnixMicro(1000)
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{
		{at, 1000},
		{at.Add(time.Nanosecond), 1001},
		{at.Add(-time.Nanosecond), 1000},
		{time.UnixMicro(-5).Add(-time.Nanosecond), -5},
	} {
		if got := CeilMicros(tt.t); got != tt.want {
			t.Errorf("CeilMicros(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

// TestOutcome: a success finishes a delivery, a failure with no next
// attempt fails it, any other failure leaves it pending until the next one.
func TestOutcome(t *testing.T) {
	at := time.UnixMicro(1000)
	next := time.UnixMicro(5000)
	for _, tt := range []struct {
		name    string
		attempt store.WebhookAttempt
		next    time.Time
		want    AttemptOutcome
	}{
		{"success", store.WebhookAttempt{At: at, Succeeded: true, Error: "ignored"}, next,
			AttemptOutcome{Status: store.WebhookSucceeded, FinishedAt: int64(1000)}},
		{"last failure", store.WebhookAttempt{At: at, Error: "boom"}, time.Time{},
			AttemptOutcome{Status: store.WebhookFailed, LastError: "boom", FinishedAt: int64(1000)}},
		{"failure", store.WebhookAttempt{At: at, Error: "boom"}, next,
			AttemptOutcome{Status: store.WebhookPending, LastError: "boom", NextAttemptAt: int64(5000)}},
	} {
		if got := Outcome(tt.attempt, tt.next); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
