package siwx

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/siwx/message"
)

func TestParseToken(t *testing.T) {
	f, _ := loadTokens(t)
	for _, tk := range f.Tokens {
		t.Run(tk.Name, func(t *testing.T) {
			got, err := ParseToken(tk.Token)
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if got.Text != tk.Message {
				t.Errorf("Text = %q, want %q", got.Text, tk.Message)
			}
			if got.Message.String() != tk.Message {
				t.Errorf("Message.String() = %q", got.Message.String())
			}
			want := 65
			if got.Message.Chain == message.ChainSolana {
				want = 64
			}
			if len(got.Signature) != want {
				t.Errorf("signature is %d bytes, want %d", len(got.Signature), want)
			}
		})
	}
}

func TestParseTokenEncodings(t *testing.T) {
	for _, name := range []string{"evm_base64url", "solana_base64url"} {
		tk := tok(t, name)
		b64, sig, _ := strings.Cut(tk.token, ".")
		if !strings.ContainsAny(b64, "-_") {
			t.Fatalf("%s: the generator's base64url has no '-' or '_': change its statement", name)
		}
		std := base64.StdEncoding.EncodeToString([]byte(tk.message))
		if !strings.ContainsAny(std, "+/") {
			t.Fatalf("%s: its standard base64 has no '+' or '/'", name)
		}
		valid := []string{std + "." + sig, b64 + "." + sig}
		for _, s := range valid {
			got, err := ParseToken(s)
			if err != nil || got.Text != tk.message {
				t.Errorf("%s: ParseToken(%.40q…) = %q, %v", name, s, got.Text, err)
			}
		}
		// One url-safe character made standard: both alphabets in one text.
		i := strings.IndexAny(b64, "-_")
		mixed := b64[:i] + map[byte]string{'-': "+", '_': "/"}[b64[i]] + b64[i+1:]
		if !strings.ContainsAny(mixed, "-_") {
			t.Fatalf("%s: the base64url has a single '-' or '_'", name)
		}
		invalid := map[string]string{
			"standard without padding": strings.TrimRight(std, "="),
			"mixed alphabets":          mixed,
		}
		if len(tk.message)%3 != 0 {
			invalid["base64url with padding"] = base64.URLEncoding.EncodeToString([]byte(tk.message))
		}
		for why, m := range invalid {
			if m == b64 || m == std {
				t.Fatalf("%s: %s: not a different encoding", name, why)
			}
			if _, err := ParseToken(m + "." + sig); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %s: ParseToken = %v, want ErrMalformed", name, why, err)
			}
		}
	}
}

func TestParseTokenRejects(t *testing.T) {
	evmTok, solTok := tok(t, "evm"), tok(t, "solana")
	evmB64, evmSig, _ := strings.Cut(evmTok.token, ".")
	solB64, solSig, _ := strings.Cut(solTok.token, ".")
	// evmB64 ends in "Fo=": 'o' leaves its 2 unused bits zero, 'p' does not.
	if !strings.HasSuffix(evmB64, "Fo=") {
		t.Fatalf("evm token's base64 ends %q", evmB64[len(evmB64)-3:])
	}
	nonZeroBits := evmB64[:len(evmB64)-2] + "p="

	tests := []struct{ name, token, reason string }{
		{"empty", "", "expected base64"},
		{"no dot", evmB64 + evmSig, "expected base64"},
		{"two dots", evmTok.token + ".", "signature"},
		{"empty message", "." + evmSig, "empty"},
		{"empty signature", evmB64 + ".", "signature"},
		{"newline in base64", evmB64[:40] + "\n" + evmB64[40:] + "." + evmSig, "not base64"},
		{"CRLF in base64", evmB64[:40] + "\r\n" + evmB64[40:] + "." + evmSig, "not base64"},
		{"space in base64", evmB64[:40] + " " + evmB64[40:] + "." + evmSig, "not base64"},
		{"non-zero padding bits", nonZeroBits + "." + evmSig, "neither"},
		{"extra padding", evmB64 + "=." + evmSig, "neither"},
		{"too long", strings.Repeat("A", MaxTokenLength-len(evmSig)) + "." + evmSig, "limit"},
		{"not a sign-in message", base64.StdEncoding.EncodeToString([]byte("hello")) + "." + evmSig, "line 1"},
		{"message with a trailing newline", base64.StdEncoding.EncodeToString([]byte(evmTok.message+"\n")) + "." + evmSig, "trailing newline"},
		{"EVM signature without 0x", evmB64 + "." + evmSig[2:], `"0x"`},
		{"EVM signature with 0X", evmB64 + ".0X" + evmSig[2:], `"0x"`},
		{"EVM signature short", evmB64 + "." + evmSig[:len(evmSig)-2], "hex digits"},
		{"EVM signature long", evmB64 + "." + evmSig + "00", "hex digits"},
		{"EVM signature not hex", evmB64 + "." + evmSig[:10] + "zz" + evmSig[12:], "signature"},
		{"EVM signature in base58", evmB64 + "." + solSig, `"0x"`},
		{"Solana signature in hex", solB64 + "." + evmSig[:130], "base58"},
		{"Solana signature with a bad digit", solB64 + ".0" + solSig[1:], "signature"},
		{"Solana signature of 65 bytes", solB64 + ".1" + solSig, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseToken(tt.token)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseToken = %+v, %v; want ErrMalformed", got, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
			if got.Message != nil || got.Signature != nil || got.Text != "" {
				t.Errorf("ParseToken returned %+v with its error", got)
			}
		})
	}
	if len(strings.Repeat("A", MaxTokenLength-len(evmSig))+"."+evmSig) != MaxTokenLength+1 {
		t.Fatal("the too-long token is not one byte over the limit")
	}
}
