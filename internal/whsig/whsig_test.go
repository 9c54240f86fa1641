package whsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks specification (libraries/go,
// TestWebhookSign, and the other languages' tests). The X-Webhook-Signature
// values and the second secret's signatures were computed with
//
//	printf '%s' '1614265330.{"test": 2432232314}' | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY
//	printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
//	  openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY -binary | base64
//
// with KEY the hex of the secret's decoded bytes.
const (
	vecSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes
	vecID      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecUnix    = 1614265330
	vecBody    = `{"test": 2432232314}`
	vecStd     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	vecSeedHex = "e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef"

	vec2Secret  = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	vec2Std     = "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI="
	vec2SeedHex = "4d315e1ba3a395ae4bccb6945393ff97b9f50eb786d0a15bfcda95b64b78b7ac"
)

var vecTime = time.Unix(vecUnix, 0)

func mustKey(t testing.TB, s string) []byte {
	t.Helper()
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return k
}

func mustSign(t testing.TB, id string, ts time.Time, body []byte, secrets ...[]byte) http.Header {
	t.Helper()
	h, err := Sign(id, ts, body, secrets...)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

func TestSignVector(t *testing.T) {
	k1, k2 := mustKey(t, vecSecret), mustKey(t, vec2Secret)
	cases := []struct {
		name    string
		secrets [][]byte
		std     string
		seed    string
	}{
		{"one secret", [][]byte{k1}, vecStd, "t=1614265330,v1=" + vecSeedHex},
		{"rotation", [][]byte{k2, k1}, vec2Std + " " + vecStd, "t=1614265330,v1=" + vec2SeedHex + ",v1=" + vecSeedHex},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Sub-second parts of the time are dropped.
			h := mustSign(t, vecID, vecTime.Add(999*time.Millisecond), []byte(vecBody), c.secrets...)
			want := http.Header{
				"Webhook-Id":          {vecID},
				"Webhook-Timestamp":   {"1614265330"},
				"Webhook-Signature":   {c.std},
				"X-Webhook-Signature": {c.seed},
			}
			if len(h) != len(want) {
				t.Errorf("Sign set %d headers, want %d: %v", len(h), len(want), h)
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v[0] {
					t.Errorf("%s = %q, want %q", k, got, v[0])
				}
			}
		})
	}
}

// TestMACs checks Sign against HMACs computed here from the definitions.
func TestMACs(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte("any body\x00\xff")
	ts := time.Unix(1700000000, 0)
	h := mustSign(t, "evt-1", ts, body, key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("evt-1.1700000000." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); h.Get(HeaderStandardSignature) != want {
		t.Errorf("webhook-signature = %s, want %s", h.Get(HeaderStandardSignature), want)
	}
	m = hmac.New(sha256.New, key)
	m.Write([]byte("1700000000." + string(body)))
	if want := "t=1700000000,v1=" + hex.EncodeToString(m.Sum(nil)); h.Get(HeaderSignature) != want {
		t.Errorf("X-Webhook-Signature = %s, want %s", h.Get(HeaderSignature), want)
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	if len(a) != len(SecretPrefix)+44 {
		t.Errorf("len(%q) = %d", a, len(a))
	}
	k, err := ParseSecret(a)
	if err != nil || len(k) != NewSecretLength {
		t.Errorf("ParseSecret(NewSecret()) = %d bytes, %v", len(k), err)
	}
}

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	cases := []struct {
		name string
		in   string
		n    int // decoded length; 0 for refused
	}{
		{"vector", vecSecret, 24},
		{"32 bytes", vec2Secret, 32},
		{"24 bytes", "whsec_" + b64(24), 24},
		{"64 bytes", "whsec_" + b64(64), 64},
		{"23 bytes", "whsec_" + b64(23), 0},
		{"65 bytes", "whsec_" + b64(65), 0},
		{"very long", "whsec_" + b64(3000), 0},
		{"empty", "", 0},
		{"prefix only", "whsec_", 0},
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0},
		{"upper prefix", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0},
		{"other prefix", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0},
		{"unpadded", strings.TrimRight(vec2Secret, "="), 0},
		{"url alphabet", "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 12))), 0},
		{"newline", "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", 0},
		{"cr lf", "whsec_MfKQ9r8GKYqrTwjU\r\nPD8ILPZIo2LaLaSw", 0},
		{"space", "whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", 0},
		{"trailing space", vecSecret + " ", 0},
		{"leading space", " " + vecSecret, 0},
		{"non-zero padding bits", "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", 0},
		{"not base64", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", 0},
	}
	for _, c := range cases {
		k, err := ParseSecret(c.in)
		if c.n == 0 {
			if !errors.Is(err, ErrInvalidSecret) {
				t.Errorf("%s: ParseSecret = %d bytes, %v; want ErrInvalidSecret", c.name, len(k), err)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ9r8G") {
				t.Errorf("%s: error %q quotes the secret", c.name, err)
			}
			continue
		}
		if err != nil || len(k) != c.n {
			t.Errorf("%s: ParseSecret = %d bytes, %v; want %d", c.name, len(k), err, c.n)
		}
	}
}

func TestValidID(t *testing.T) {
	cases := map[string]bool{
		vecID:                              true,
		"msg_2k7v0m3x9d4c8h6b1n0p2r5tae":   true,
		"a":                                true,
		"Z-9_x":                            true,
		strings.Repeat("a", MaxIDLength):   true,
		strings.Repeat("a", MaxIDLength+1): false,
		"":                                 false,
		"1msg":                             false,
		"1614265330":                       false,
		"_msg":                             false,
		"msg.1":                            false,
		"msg 1":                            false,
		"msg,1":                            false,
		"msg\x00":                          false,
		"msg/1":                            false,
		"msgé":                             false,
	}
	for id, want := range cases {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	key := mustKey(t, vec2Secret)
	eleven := make([][]byte, MaxSignatures+1)
	for i := range eleven {
		eleven[i] = key
	}
	ten := eleven[:MaxSignatures]
	cases := []struct {
		name    string
		id      string
		ts      time.Time
		secrets [][]byte
		ok      bool
	}{
		{"ok", vecID, vecTime, [][]byte{key}, true},
		{"ten secrets", vecID, vecTime, ten, true},
		{"epoch", vecID, time.Unix(0, 0), [][]byte{key}, true},
		{"bad id", "msg.1", vecTime, [][]byte{key}, false},
		{"empty id", "", vecTime, [][]byte{key}, false},
		{"before 1970", vecID, time.Unix(-1, 0), [][]byte{key}, false},
		{"zero time", vecID, time.Time{}, [][]byte{key}, false},
		{"no secret", vecID, vecTime, nil, false},
		{"eleven secrets", vecID, vecTime, eleven, false},
		{"empty secret", vecID, vecTime, [][]byte{key, nil}, false},
		{"short secret", vecID, vecTime, [][]byte{key[:MinSecretLength-1]}, false},
		{"long secret", vecID, vecTime, [][]byte{make([]byte, MaxSecretLength+1)}, false},
	}
	for _, c := range cases {
		h, err := Sign(c.id, c.ts, nil, c.secrets...)
		if (err == nil) != c.ok {
			t.Errorf("%s: Sign = %v, %v", c.name, h, err)
		}
		if err == nil {
			if err := Verify(h, nil, key, c.ts, 0); err != nil {
				t.Errorf("%s: Verify: %v", c.name, err)
			}
			if err := VerifyStandard(h, nil, key, c.ts, 0); err != nil {
				t.Errorf("%s: VerifyStandard: %v", c.name, err)
			}
		}
	}
}

// verifiers are the two formats' verifiers, for tests that apply to both.
var verifiers = []struct {
	name   string
	verify func(http.Header, []byte, []byte, time.Time, time.Duration) error
}{
	{"X-Webhook-Signature", Verify},
	{"webhook-signature", VerifyStandard},
}

func TestRotation(t *testing.T) {
	oldKey, newKey := mustKey(t, vecSecret), mustKey(t, vec2Secret)
	other, _ := ParseSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 32))))
	body := []byte(vecBody)
	h := mustSign(t, vecID, vecTime, body, newKey, oldKey)
	if n := strings.Count(h.Get(HeaderStandardSignature), "v1,"); n != 2 {
		t.Errorf("webhook-signature has %d signatures, want 2", n)
	}
	if n := strings.Count(h.Get(HeaderSignature), "v1="); n != 2 {
		t.Errorf("X-Webhook-Signature has %d signatures, want 2", n)
	}
	for _, v := range verifiers {
		for name, key := range map[string][]byte{"new": newKey, "old": oldKey} {
			if err := v.verify(h, body, key, vecTime, 0); err != nil {
				t.Errorf("%s with the %s secret alone: %v", v.name, name, err)
			}
		}
		err := v.verify(h, body, other, vecTime, 0)
		if !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrMalformedSignature) || errors.Is(err, ErrTimestamp) {
			t.Errorf("%s with a third secret: %v, want ErrInvalidSignature", v.name, err)
		}
	}
}

func TestTimestamp(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte(vecBody)
	h := mustSign(t, vecID, vecTime, body, key)
	cases := []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"same second", vecTime, 0, nil},
		{"default tolerance, late edge", vecTime.Add(5 * time.Minute), 0, nil},
		{"default tolerance, early edge", vecTime.Add(-5 * time.Minute), 0, nil},
		{"replay after tolerance", vecTime.Add(5*time.Minute + time.Nanosecond), 0, ErrTimestamp},
		{"replay a day later", vecTime.Add(24 * time.Hour), 0, ErrTimestamp},
		{"from the future", vecTime.Add(-5*time.Minute - time.Second), 0, ErrTimestamp},
		{"negative tolerance is the default", vecTime.Add(4 * time.Minute), -time.Second, nil},
		{"custom tolerance", vecTime.Add(31 * time.Second), 30 * time.Second, ErrTimestamp},
		{"custom tolerance, in", vecTime.Add(30 * time.Second), 30 * time.Second, nil},
		{"long tolerance", vecTime.Add(time.Hour), 2 * time.Hour, nil},
		{"zero now", time.Time{}, 0, ErrTimestamp},
		{"far future now", time.Unix(1<<62, 0), 0, ErrTimestamp},
	}
	for _, v := range verifiers {
		for _, c := range cases {
			err := v.verify(h, body, key, c.now, c.tolerance)
			if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
				t.Errorf("%s, %s: %v, want %v", v.name, c.name, err, c.want)
			}
			if c.want != nil && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s, %s: %v does not match ErrInvalidSignature", v.name, c.name, err)
			}
		}
	}
}

func TestTamper(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte(vecBody)
	h := mustSign(t, vecID, vecTime, body, key)
	for _, v := range verifiers {
		for name, b := range map[string][]byte{
			"changed":    []byte(`{"test": 2432232315}`),
			"reformated": []byte(`{"test":2432232314}`),
			"appended":   []byte(vecBody + "\n"),
			"empty":      nil,
		} {
			err := v.verify(h, b, key, vecTime, 0)
			if !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrMalformedSignature) {
				t.Errorf("%s, body %s: %v, want ErrInvalidSignature", v.name, name, err)
			}
		}
	}
	// The timestamp is signed: moving it, even within the tolerance, breaks
	// the signature.
	for _, v := range verifiers {
		moved := h.Clone()
		moved.Set(HeaderTimestamp, "1614265331")
		moved.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "t=1614265330", "t=1614265331", 1))
		if err := v.verify(moved, body, key, vecTime, 0); !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s, timestamp moved: %v, want ErrInvalidSignature", v.name, err)
		}
	}
	// The ID is signed in the Standard Webhooks format.
	moved := h.Clone()
	moved.Set(HeaderID, "msg_other")
	if err := VerifyStandard(moved, body, key, vecTime, 0); !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrMalformedSignature) {
		t.Errorf("id changed: %v, want ErrInvalidSignature", err)
	}
}

func TestBadKey(t *testing.T) {
	key := mustKey(t, vec2Secret)
	h := mustSign(t, vecID, vecTime, nil, key)
	for _, v := range verifiers {
		for _, k := range [][]byte{nil, key[:MinSecretLength-1], make([]byte, MaxSecretLength+1)} {
			err := v.verify(h, nil, k, vecTime, 0)
			if err == nil || errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrMissingSignature) {
				t.Errorf("%s, %d-byte key: %v, want a caller error", v.name, len(k), err)
			}
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for _, err := range []error{ErrMalformedSignature, ErrTimestamp, ErrInvalidSignature} {
		if !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%v does not match ErrInvalidSignature", err)
		}
		if errors.Is(err, ErrMissingSignature) {
			t.Errorf("%v matches ErrMissingSignature", err)
		}
	}
	if errors.Is(ErrInvalidSignature, ErrMalformedSignature) || errors.Is(ErrTimestamp, ErrMalformedSignature) {
		t.Error("kinds match each other")
	}
}

// hexMAC is the X-Webhook-Signature v1 value for ts and body under key.
func hexMAC(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

// b64MAC is the webhook-signature v1 value for id, ts and body under key.
func b64MAC(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte(vecBody)
	const ts = "1614265330"
	good := hexMAC(key, ts, body)
	bad := hexMAC(key, ts, []byte("other"))
	// Headers of up to MaxHeaderLength bytes are parsed; the unknown
	// scheme's value pads to the limit exactly.
	pad := func(n int) string { return strings.Repeat("x", n) }
	atLimit := "t=" + ts + ",v1=" + good + ",v9="
	atLimit += pad(MaxHeaderLength - len(atLimit))
	cases := []struct {
		name   string
		values []string
		want   error // nil: valid
	}{
		{"valid", []string{"t=" + ts + ",v1=" + good}, nil},
		{"v1 first", []string{"v1=" + good + ",t=" + ts}, nil},
		{"second of two", []string{"t=" + ts + ",v1=" + bad + ",v1=" + good}, nil},
		{"first of two", []string{"t=" + ts + ",v1=" + good + ",v1=" + bad}, nil},
		{"unknown scheme ignored", []string{"t=" + ts + ",v0=abc,v1=" + good}, nil},
		{"ten signatures", []string{"t=" + ts + strings.Repeat(",v1="+bad, 9) + ",v1=" + good}, nil},
		{"at length limit", []string{atLimit}, nil},

		{"absent", nil, ErrMissingSignature},
		{"empty", []string{""}, ErrMissingSignature},

		{"wrong signature", []string{"t=" + ts + ",v1=" + bad}, ErrInvalidSignature},
		{"only unknown schemes", []string{"t=" + ts + ",v2=" + good}, ErrInvalidSignature},
		{"other timestamp", []string{"t=1614265331,v1=" + good}, ErrInvalidSignature},

		{"repeated header", []string{"t=" + ts + ",v1=" + good, "t=" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"over length limit", []string{atLimit + "x"}, ErrMalformedSignature},
		{"eleven signatures", []string{"t=" + ts + strings.Repeat(",v1="+bad, 10) + ",v1=" + good}, ErrMalformedSignature},
		{"eleven with unknown", []string{"t=" + ts + strings.Repeat(",v0=a", 10) + ",v1=" + good}, ErrMalformedSignature},
		{"no t", []string{"v1=" + good}, ErrMalformedSignature},
		{"t twice", []string{"t=" + ts + ",t=" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"no signature", []string{"t=" + ts}, ErrMalformedSignature},
		{"t empty", []string{"t=,v1=" + good}, ErrMalformedSignature},
		{"t leading zero", []string{"t=0" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"t plus", []string{"t=+" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"t negative", []string{"t=-1,v1=" + good}, ErrMalformedSignature},
		{"t fraction", []string{"t=" + ts + ".0,v1=" + good}, ErrMalformedSignature},
		{"t over int64", []string{"t=9223372036854775808,v1=" + good}, ErrMalformedSignature},
		{"t twenty digits", []string{"t=16142653300000000000,v1=" + good}, ErrMalformedSignature},
		{"t hex", []string{"t=0x60372df2,v1=" + good}, ErrMalformedSignature},
		{"T upper", []string{"T=" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"V1 upper", []string{"t=" + ts + ",V1=" + good}, ErrMalformedSignature},
		{"v1 upper hex", []string{"t=" + ts + ",v1=" + strings.ToUpper(good)}, ErrMalformedSignature},
		{"v1 short", []string{"t=" + ts + ",v1=" + good[:62]}, ErrMalformedSignature},
		{"v1 long", []string{"t=" + ts + ",v1=" + good + "00"}, ErrMalformedSignature},
		{"v1 not hex", []string{"t=" + ts + ",v1=" + good[:63] + "g"}, ErrMalformedSignature},
		{"v1 base64", []string{"t=" + ts + ",v1=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, ErrMalformedSignature},
		{"v1 empty", []string{"t=" + ts + ",v1="}, ErrMalformedSignature},
		{"space after comma", []string{"t=" + ts + ", v1=" + good}, ErrMalformedSignature},
		{"leading space", []string{" t=" + ts + ",v1=" + good}, ErrMalformedSignature},
		{"trailing comma", []string{"t=" + ts + ",v1=" + good + ","}, ErrMalformedSignature},
		{"empty entry", []string{"t=" + ts + ",,v1=" + good}, ErrMalformedSignature},
		{"semicolons", []string{"t=" + ts + ";v1=" + good}, ErrMalformedSignature},
		{"no equals", []string{"t=" + ts + ",v1" + good}, ErrMalformedSignature},
		{"unknown scheme empty", []string{"t=" + ts + ",v0=,v1=" + good}, ErrMalformedSignature},
		{"unknown scheme control", []string{"t=" + ts + ",v0=a\x00,v1=" + good}, ErrMalformedSignature},
		{"bad key", []string{"t=" + ts + ",v-1=x,v1=" + good}, ErrMalformedSignature},
		{"long key", []string{"t=" + ts + ",v" + pad(16) + "=x,v1=" + good}, ErrMalformedSignature},
	}
	for _, c := range cases {
		h := http.Header{HeaderSignature: c.values}
		err := Verify(h, body, key, vecTime, 0)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
		if c.want != nil && !errors.Is(c.want, ErrMalformedSignature) && errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s: Verify = %v, not malformed", c.name, err)
		}
		if err != nil && strings.Contains(err.Error(), good[:16]) {
			t.Errorf("%s: error %q quotes the header", c.name, err)
		}
	}
}

func TestVerifyStandard(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte(vecBody)
	const ts = "1614265330"
	good := "v1," + b64MAC(key, vecID, ts, body)
	bad := "v1," + b64MAC(key, vecID, ts, []byte("other"))
	unpadded := strings.TrimRight(good, "=")
	short := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 31))
	long := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 33))
	atLimit := good + " v1a,"
	atLimit += strings.Repeat("x", MaxHeaderLength-len(atLimit))
	type hdr = map[string][]string
	with := func(sig ...string) hdr {
		return hdr{HeaderID: {vecID}, HeaderTimestamp: {ts}, HeaderStandardSignature: sig}
	}
	cases := []struct {
		name string
		h    hdr
		want error
	}{
		{"valid", with(good), nil},
		{"second of two", with(bad + " " + good), nil},
		{"v1a ignored", with("v1a,bm90IGFuIGVkMjU1MTkgc2lnbmF0dXJl " + good), nil},
		{"v2 ignored", with("v2,whatever " + good), nil},
		{"ten signatures", with(strings.Repeat(bad+" ", 9) + good), nil},
		{"at length limit", with(atLimit), nil},

		{"absent", hdr{HeaderID: {vecID}, HeaderTimestamp: {ts}}, ErrMissingSignature},
		{"empty", with(""), ErrMissingSignature},
		{"none at all", hdr{}, ErrMissingSignature},

		{"wrong signature", with(bad), ErrInvalidSignature},
		{"only v1a", with("v1a," + b64MAC(key, vecID, ts, body)), ErrInvalidSignature},
		{"other id", hdr{HeaderID: {"msg_x"}, HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrInvalidSignature},
		{"other timestamp", hdr{HeaderID: {vecID}, HeaderTimestamp: {"1614265331"}, HeaderStandardSignature: {good}}, ErrInvalidSignature},

		{"repeated header", with(good, good), ErrMalformedSignature},
		{"over length limit", with(atLimit + "x"), ErrMalformedSignature},
		{"eleven signatures", with(strings.Repeat(bad+" ", 10) + good), ErrMalformedSignature},
		{"double space", with(bad + "  " + good), ErrMalformedSignature},
		{"leading space", with(" " + good), ErrMalformedSignature},
		{"trailing space", with(good + " "), ErrMalformedSignature},
		{"tab", with(bad + "\t" + good), ErrMalformedSignature},
		{"comma list", with(bad + "," + good), ErrMalformedSignature},
		{"no comma", with("v1" + good[3:]), ErrMalformedSignature},
		{"empty scheme", with(good[2:]), ErrMalformedSignature},
		{"V1 upper", with("V1" + good[2:]), ErrMalformedSignature},
		{"v1 empty", with("v1,"), ErrMalformedSignature},
		{"v1 unpadded", with(unpadded), ErrMalformedSignature},
		{"v1 31 bytes", with(short), ErrMalformedSignature},
		{"v1 33 bytes", with(long), ErrMalformedSignature},
		{"v1 url alphabet", with("v1," + strings.Repeat("_", 43) + "="), ErrMalformedSignature},
		{"v1 hex", with("v1," + hexMAC(key, ts, body)), ErrMalformedSignature},
		{"v1 non-zero padding bits", with("v1," + strings.Repeat("A", 42) + "B="), ErrMalformedSignature},
		{"v1a empty", with("v1a, " + good), ErrMalformedSignature},
		{"v1a control", with("v1a,\x7f " + good), ErrMalformedSignature},
		{"no id", hdr{HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"empty id", hdr{HeaderID: {""}, HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"id twice", hdr{HeaderID: {vecID, vecID}, HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"id with dot", hdr{HeaderID: {"msg.1"}, HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"numeric id", hdr{HeaderID: {"1614265330"}, HeaderTimestamp: {ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"no timestamp", hdr{HeaderID: {vecID}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp twice", hdr{HeaderID: {vecID}, HeaderTimestamp: {ts, ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp leading zero", hdr{HeaderID: {vecID}, HeaderTimestamp: {"0" + ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp plus", hdr{HeaderID: {vecID}, HeaderTimestamp: {"+" + ts}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp space", hdr{HeaderID: {vecID}, HeaderTimestamp: {ts + " "}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp over int64", hdr{HeaderID: {vecID}, HeaderTimestamp: {"9223372036854775808"}, HeaderStandardSignature: {good}}, ErrMalformedSignature},
		{"timestamp millis", hdr{HeaderID: {vecID}, HeaderTimestamp: {ts + "000"}, HeaderStandardSignature: {good}}, ErrTimestamp},
	}
	for _, c := range cases {
		err := VerifyStandard(http.Header(c.h), body, key, vecTime, 0)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: VerifyStandard = %v, want %v", c.name, err, c.want)
		}
		if c.want != nil && !errors.Is(c.want, ErrMalformedSignature) && errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s: VerifyStandard = %v, not malformed", c.name, err)
		}
	}
}

// TestFormatsSeparate checks that a signature of one format does not verify
// in the other, although both use the same key.
func TestFormatsSeparate(t *testing.T) {
	key := mustKey(t, vec2Secret)
	body := []byte(vecBody)
	h := mustSign(t, vecID, vecTime, body, key)
	mac, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.Get(HeaderStandardSignature), "v1,"))
	cross := http.Header{HeaderSignature: {"t=1614265330,v1=" + hex.EncodeToString(mac)}}
	if err := Verify(cross, body, key, vecTime, 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("standard MAC as X-Webhook-Signature: %v", err)
	}
}

func benchmarkSign(b *testing.B, n int) {
	body := []byte(strings.Repeat("x", 1024))
	secrets := make([][]byte, n)
	for i := range secrets {
		secrets[i] = make([]byte, NewSecretLength)
		secrets[i][0] = byte(i)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(vecID, vecTime, body, secrets...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign1KiB1Secret(b *testing.B)  { benchmarkSign(b, 1) }
func BenchmarkSign1KiB2Secrets(b *testing.B) { benchmarkSign(b, 2) }

func BenchmarkVerify1KiB(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	key := make([]byte, NewSecretLength)
	h, _ := Sign(vecID, vecTime, body, key, key)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(h, body, key, vecTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyStandard1KiB(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	key := make([]byte, NewSecretLength)
	h, _ := Sign(vecID, vecTime, body, key, key)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyStandard(h, body, key, vecTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}
