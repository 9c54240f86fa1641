package counters

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute, Window: 15 * time.Minute}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {1, 0}, {5, 0},
		{6, time.Second}, {7, 2 * time.Second}, {8, 4 * time.Second},
		{15, 512 * time.Second}, {16, 15 * time.Minute}, {1000, 15 * time.Minute}, {math.MaxInt32, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.n); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
	// Doubling never overflows, whatever the cap.
	huge := Backoff{Free: 1, Base: time.Hour, Max: math.MaxInt64, Window: time.Hour}
	for n := 2; n < 200; n++ {
		if d := huge.Delay(n); d < huge.Delay(n-1) || d <= 0 {
			t.Fatalf("Delay(%d) = %v after %v", n, d, huge.Delay(n-1))
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	ok := Backoff{Free: 1, Base: time.Second, Max: time.Second, Window: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("%+v: %v", ok, err)
	}
	for _, b := range []Backoff{
		{},
		{Free: -1, Base: time.Second, Max: time.Second, Window: time.Second},
		{Free: 1, Base: -time.Second, Max: time.Second, Window: time.Second},
		{Free: 1, Base: 2 * time.Second, Max: time.Second, Window: time.Second},
		{Free: 1, Base: time.Second, Max: time.Second, Window: -1},
	} {
		if err := b.Validate(); !errors.Is(err, ErrInvalidBackoff) {
			t.Errorf("%+v: err = %v, want ErrInvalidBackoff", b, err)
		}
	}
}
