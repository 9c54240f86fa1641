package message

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts round-trips: String
// returns the input unchanged, it parses again to an equal Message, and the same fields built in
// code (without the parsed time spellings) render canonically to text that parses back equal.
func FuzzParse(f *testing.F) {
	for _, s := range validCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			if m != nil {
				t.Fatal("Parse returned a message with its error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out := m.String()
		if out != s {
			t.Fatalf("String() = %q, input %q", out, s)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(String()): %v", err)
		}
		if d := sameMessage(m2, m); d != "" {
			t.Fatalf("Parse(String()) differs: %s", d)
		}
		if m2.String() != s {
			t.Fatalf("second String() = %q", m2.String())
		}
		canon := exported(m).String()
		m3, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical rendering %q does not parse: %v", canon, err)
		}
		if d := sameMessage(m3, m); d != "" {
			t.Fatalf("canonical rendering parses differently: %s", d)
		}
	})
}
