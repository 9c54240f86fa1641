package whsig

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// anyKind reports whether err is nil or matches one of the verifiers'
// sentinel errors.
func anyKind(err error) bool {
	return err == nil || errors.Is(err, ErrMissingSignature) || errors.Is(err, ErrInvalidSignature)
}

func FuzzParseWebhookSignature(f *testing.F) {
	f.Add("t=1614265330,v1=" + vecSeedHex)
	f.Add("t=1614265330,v1=" + vecSeedHex + ",v1=" + vec2SeedHex)
	f.Add("v1=" + vecSeedHex + ",t=1614265330,v0=x")
	f.Add("t=0,v1=")
	f.Add("t=9223372036854775807,v1=" + vecSeedHex)
	f.Add("t=01,,v1=x=y")
	f.Add("")
	key := mustKey(f, vecSecret)
	f.Fuzz(func(t *testing.T, v string) {
		ts, macs, err := parseSignature(v)
		if err != nil {
			if !errors.Is(err, ErrMalformedSignature) {
				t.Fatalf("parseSignature error %v is not ErrMalformedSignature", err)
			}
		} else {
			if !validTimestamp(ts) || len(macs) > MaxSignatures || len(v) > MaxHeaderLength {
				t.Fatalf("parseSignature(%q) = %q, %d MACs", v, ts, len(macs))
			}
		}
		err = Verify(http.Header{HeaderSignature: {v}}, []byte(vecBody), key, vecTime, 0)
		if !anyKind(err) {
			t.Fatalf("Verify error %v is of no kind", err)
		}
	})
}

func FuzzParseStandardSignature(f *testing.F) {
	f.Add(vecStd)
	f.Add(vec2Std + " " + vecStd)
	f.Add("v1a,abc " + vecStd)
	f.Add("v1, v1,")
	f.Add("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")
	f.Add("")
	key := mustKey(f, vecSecret)
	f.Fuzz(func(t *testing.T, v string) {
		macs, err := parseStandardSignature(v)
		if err != nil {
			if !errors.Is(err, ErrMalformedSignature) {
				t.Fatalf("parseStandardSignature error %v is not ErrMalformedSignature", err)
			}
		} else if len(macs) > MaxSignatures || len(v) > MaxHeaderLength {
			t.Fatalf("parseStandardSignature(%q) = %d MACs", v, len(macs))
		}
		h := http.Header{HeaderID: {vecID}, HeaderTimestamp: {"1614265330"}, HeaderStandardSignature: {v}}
		err = VerifyStandard(h, []byte(vecBody), key, vecTime, 0)
		if !anyKind(err) {
			t.Fatalf("VerifyStandard error %v is of no kind", err)
		}
		if err == nil && !strings.Contains(v, vecStd) {
			t.Fatalf("VerifyStandard accepted %q", v)
		}
	})
}

// FuzzVerify signs arbitrary messages and checks that each secret alone
// verifies them in both formats and that another body does not; then it
// verifies arbitrary header values.
func FuzzVerify(f *testing.F) {
	f.Add(vecID, int64(vecUnix), []byte(vecBody), []byte("0123456789abcdef01234567"), []byte{}, int64(0), "", "", "", "")
	f.Add("a", int64(0), []byte{}, []byte("k"), []byte("second"), int64(301), "t=1,v1=00", "x", "1", "v1,x")
	f.Add("msg-1", int64(1<<40), []byte("\x00\xff"), bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{2}, 65), int64(-300), "", "msg.1", "01", "v1a,x v1,y")
	f.Fuzz(func(t *testing.T, id string, unix int64, body, k1, k2 []byte, skew int64,
		seedHdr, idHdr, tsHdr, stdHdr string) {
		key := func(k []byte) []byte {
			if len(k) >= MinSecretLength && len(k) <= MaxSecretLength {
				return k
			}
			s := sha256.Sum256(k)
			return s[:]
		}
		k1, k2 = key(k1), key(k2)
		ts := time.Unix(unix, 0)
		now := ts.Add(time.Duration(skew%600) * time.Second)
		tolerance := DefaultTolerance
		inTime := now.Sub(ts) >= -tolerance && now.Sub(ts) <= tolerance

		h, err := Sign(id, ts, body, k1, k2)
		if err == nil {
			for _, v := range verifiers {
				for _, k := range [][]byte{k1, k2} {
					err := v.verify(h, body, k, now, 0)
					if inTime && err != nil {
						t.Fatalf("%s: Sign's headers do not verify: %v", v.name, err)
					}
					if !inTime && !errors.Is(err, ErrTimestamp) {
						t.Fatalf("%s: %v, want ErrTimestamp", v.name, err)
					}
				}
				other := append(append([]byte(nil), body...), 'x')
				if err := v.verify(h, other, k1, ts, 0); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("%s: tampered body: %v", v.name, err)
				}
			}
		} else if ValidID(id) && unix >= 0 {
			t.Fatalf("Sign(%q, %d): %v", id, unix, err)
		}

		g := http.Header{HeaderSignature: {seedHdr}, HeaderID: {idHdr}, HeaderTimestamp: {tsHdr}, HeaderStandardSignature: {stdHdr}}
		if err := Verify(g, body, k1, now, 0); !anyKind(err) {
			t.Fatalf("Verify error %v is of no kind", err)
		}
		if err := VerifyStandard(g, body, k1, now, 0); !anyKind(err) {
			t.Fatalf("VerifyStandard error %v is of no kind", err)
		}
	})
}
