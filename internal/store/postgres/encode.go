package postgres

import (
	"encoding/json"
	"fmt"
	"time"
)

// This file holds the conversions between Go values and column values, in
// both directions: the encoders turn a field into a query argument, the
// decoders are sql.Scanners (which pgx scans into) that write into a field.

// micros encodes a time as unix microseconds, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// jsonList encodes a string list as a JSON array ("[]" for nil), for a JSONB
// column: pgx sends a string to a JSONB parameter as JSON text.
func jsonList(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ss) // a []string always marshals
	return string(b)
}

// jsonObject encodes audit details as a JSON object ("{}" for nil).
func jsonObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

// blob encodes a byte slice for a NOT NULL BYTEA column: pgx sends a nil
// slice as NULL, an empty one as an empty value.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullBlob encodes a byte slice for a nullable BYTEA column: empty is NULL.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// timeCol decodes unix microseconds (or NULL) into a UTC time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

// listCol decodes a JSON array into a string slice that is never nil.
type listCol struct{ ss *[]string }

func (c listCol) Scan(src any) error {
	out := []string{}
	if b := text(src); len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("list column: %w", err)
		}
		if out == nil { // the JSON was null
			out = []string{}
		}
	}
	*c.ss = out
	return nil
}

// objectCol decodes a JSON object into a map that is never nil.
type objectCol struct{ m *map[string]string }

func (c objectCol) Scan(src any) error {
	out := map[string]string{}
	if b := text(src); len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("object column: %w", err)
		}
		if out == nil {
			out = map[string]string{}
		}
	}
	*c.m = out
	return nil
}

// blobCol decodes a BYTEA into a byte slice that is never nil, and that does
// not alias the driver's buffer.
type blobCol struct{ b *[]byte }

func (c blobCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.b = []byte{}
	case []byte:
		*c.b = append([]byte{}, v...)
	case string:
		*c.b = []byte(v)
	default:
		return fmt.Errorf("blob column: unexpected %T", src)
	}
	return nil
}

func text(src any) []byte {
	switch v := src.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	}
	return nil
}
