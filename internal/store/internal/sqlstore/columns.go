package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// This file holds the conversions between Go values and column values, in
// both directions: the encoders turn a field into a query argument, the
// decoders are sql.Scanners (which database/sql and pgx both scan into) that
// write into a field.

// Micros encodes a time as unix microseconds, or NULL for the zero time.
func Micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// JSONList encodes a string list as a JSON array ("[]" for nil). For a JSONB
// column, pgx sends the string as JSON text.
func JSONList(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ss) // a []string always marshals
	return string(b)
}

// JSONObject encodes audit details as a JSON object ("{}" for nil).
func JSONObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

// Blob encodes a byte slice for a NOT NULL BLOB (BYTEA) column: the drivers
// bind a nil slice as NULL, an empty one as an empty value.
func Blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// NullBlob encodes a byte slice for a nullable BLOB (BYTEA) column: empty is
// NULL.
func NullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TimeCol decodes unix microseconds (or NULL) into a UTC time.
func TimeCol(t *time.Time) sql.Scanner { return timeCol{t} }

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

// ListCol decodes a JSON array into a string slice that is never nil.
func ListCol(ss *[]string) sql.Scanner { return listCol{ss} }

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

// ObjectCol decodes a JSON object into a map that is never nil.
func ObjectCol(m *map[string]string) sql.Scanner { return objectCol{m} }

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

// BlobCol decodes a BLOB (BYTEA) into a byte slice that is never nil, and
// that does not alias the driver's buffer.
func BlobCol(b *[]byte) sql.Scanner { return blobCol{b} }

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

// CeilMicros returns the first unix microsecond not before t. A stored time
// (whole microseconds) m is >= t, or < t, exactly when m is >= or < than
// CeilMicros(t), so bounds given at any precision compare right.
func CeilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// ClampLimit returns a list's limit: def when none is asked for, at most
// most.
func ClampLimit(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	}
	return limit
}
