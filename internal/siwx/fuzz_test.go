package siwx

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/siwx/message"
)

func addSeeds(f *testing.F) {
	tf, _ := loadTokens(f)
	for _, tk := range tf.Tokens {
		f.Add(tk.Token)
	}
	f.Add("")
	f.Add(".")
	f.Add("YQ==.0x")
}

// FuzzParseToken checks that ParseToken never panics, that its errors wrap
// ErrMalformed, and that what it accepts is consistent.
func FuzzParseToken(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if tk.Message != nil || tk.Signature != nil || tk.Text != "" {
				t.Fatal("ParseToken returned a token with its error")
			}
			return
		}
		if len(s) > MaxTokenLength {
			t.Fatalf("accepted a token of %d bytes", len(s))
		}
		if got := tk.Message.String(); got != tk.Text {
			t.Fatalf("Message.String() = %q, Text %q", got, tk.Text)
		}
		want := 65
		if tk.Message.Chain == message.ChainSolana {
			want = 64
		}
		if len(tk.Signature) != want {
			t.Fatalf("%s signature of %d bytes", tk.Message.Chain, len(tk.Signature))
		}
	})
}

// FuzzVerify checks that Verify never panics, that each error wraps exactly
// one of the sentinels, and that what it accepts is valid at the time and
// answers the same from the cache.
func FuzzVerify(f *testing.F) {
	addSeeds(f)
	v, err := New(testConfig(clock.NewFake(t0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, exp, err := v.Verify(s)
		if err != nil {
			n := 0
			for _, e := range []error{ErrMalformed, ErrSignature, ErrExpired} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, n)
			}
			return
		}
		if w.Chain == "" || w.Address == "" || !exp.After(t0) || exp.Sub(t0) > DefaultMaxLifetime+time.Minute {
			t.Fatalf("Verify = %+v, %v", w, exp)
		}
		w2, exp2, err := v.Verify(s)
		if err != nil || w2 != w || !exp2.Equal(exp) {
			t.Fatalf("again: %+v, %v, %v", w2, exp2, err)
		}
	})
}

// FuzzParseHeader checks that ParseHeader never panics, that its errors
// wrap ErrMalformed, and that the text it rebuilds parses as itself.
func FuzzParseHeader(f *testing.F) {
	tf, _ := loadTokens(f)
	for _, h := range tf.Headers {
		f.Add(h.Header)
	}
	f.Add("")
	f.Add("e30=")
	v, err := New(testConfig(clock.NewFake(time.Date(2030, 1, 1, 0, 2, 0, 0, time.UTC))))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseHeader(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		} else {
			m, err := message.Parse(tk.Text)
			if err != nil || m.String() != tk.Text {
				t.Fatalf("rebuilt text %q does not parse as itself: %v", tk.Text, err)
			}
		}
		if _, _, err := v.VerifyHeader(s); err != nil {
			n := 0
			for _, e := range []error{ErrMalformed, ErrSignature, ErrExpired} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, n)
			}
		}
	})
}
