package siwx

import "testing"

func benchmarkVerify(b *testing.B, name string, cacheSize int) {
	v, _ := newTestVerifier(b, func(c *Config) { c.CacheSize = cacheSize })
	token := tok(b, name).token
	if _, _, err := v.Verify(token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// Cold: the cache is disabled, so every Verify parses and checks the
// signature.
func BenchmarkVerifyEVMCold(b *testing.B)      { benchmarkVerify(b, "evm", -1) }
func BenchmarkVerifyEVMCached(b *testing.B)    { benchmarkVerify(b, "evm", 0) }
func BenchmarkVerifySolanaCold(b *testing.B)   { benchmarkVerify(b, "solana", -1) }
func BenchmarkVerifySolanaCached(b *testing.B) { benchmarkVerify(b, "solana", 0) }

func BenchmarkParseToken(b *testing.B) {
	token := tok(b, "evm").token
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseToken(token); err != nil {
			b.Fatal(err)
		}
	}
}
