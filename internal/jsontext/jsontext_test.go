package jsontext

import (
	"encoding/json"
	"testing"
)

// AppendString must produce a JSON string that decodes to what
// encoding/json makes of the same Go string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "curl/8.5.0", "/v1/x?q=\"a\"\\b", "tab\tnl\ncr\r\x00\x1f", "caf\u00e9 \u2028\u2029 \U0001F600", "\xff\xfe"} {
		f.Add(s)
	}
	f.Add("\xed\xa0\x80") // an encoded surrogate: invalid UTF-8
	f.Fuzz(func(t *testing.T, s string) {
		enc := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %q: %v", s, enc, err)
		}
		ref, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q: decoded %q, encoding/json gives %q", s, got, want)
		}
	})
}
