package apierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWriteExtra: members of Extra go beside "error" in the body, which
// keeps its shape; "error" cannot be overridden; WithExtra copies.
func TestWriteExtra(t *testing.T) {
	base := New(http.StatusPaymentRequired, PaymentRequired, "payment required").WithHeader("Payment-Required", "e30=")
	e := base.WithExtra("x402Version", 1).WithExtra("accepts", []string{"a"}).WithExtra("error", "overridden?")
	if len(base.Extra) != 0 {
		t.Fatalf("WithExtra changed the original: %v", base.Extra)
	}
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest("GET", "/v1/x", nil), e)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 402 || rec.Header().Get("Payment-Required") != "e30=" || string(got["x402Version"]) != "1" || string(got["accepts"]) != `["a"]` {
		t.Errorf("response %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	var inner struct{ Code, Message string }
	if err := json.Unmarshal(got["error"], &inner); err != nil || inner.Code != "PAYMENT_REQUIRED" || inner.Message != "payment required" {
		t.Errorf("error member %s (%v)", got["error"], err)
	}
}
