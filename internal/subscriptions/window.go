package subscriptions

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/tollgate/tollgate/internal/eip3009"
)

// Reasons of x402 (x402 protocol specification, version 2, section 9) that
// Tollgate gives when it refuses a payment itself.
const (
	ReasonValidAfter  = "invalid_exact_evm_payload_authorization_valid_after"
	ReasonValidBefore = "invalid_exact_evm_payload_authorization_valid_before"
	ReasonValue       = "invalid_exact_evm_payload_authorization_value"
	ReasonSignature   = "invalid_exact_evm_payload_signature"
	ReasonRecipient   = "invalid_exact_evm_payload_recipient_mismatch"
	ReasonNetwork     = "invalid_network"
	ReasonRequirement = "invalid_payment_requirements"
)

// PaymentError is a refusal of a payment, with its x402 reason. It wraps
// ErrPaymentInvalid.
type PaymentError struct {
	// Reason is one of x402's error codes (the Reason constants).
	Reason string
	// Msg says what is wrong, for the payer.
	Msg string
}

func (e *PaymentError) Error() string { return ErrPaymentInvalid.Error() + ": " + e.Msg }

// Unwrap makes a PaymentError an ErrPaymentInvalid.
func (e *PaymentError) Unwrap() error { return ErrPaymentInvalid }

func refusal(reason, format string, args ...any) error {
	return &PaymentError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// reasonOf returns the x402 reason of a refusal, "" if it has none.
func reasonOf(err error) string {
	var pe *PaymentError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

// ClockSkew is how much later than now plus the offer's maxTimeoutSeconds
// an authorization's validBefore may be: the payer's clock may run ahead of
// Tollgate's by that much.
const ClockSkew = 30 * time.Second

// CheckWindow checks the validity window of a, at now, against an offer
// whose payments must settle within maxTimeout (maxTimeoutSeconds): its
// validAfter must be in the past (the token contract accepts it only in a
// later block), its validBefore in the future, and no later than now plus
// maxTimeout plus ClockSkew. An authorization valid for longer would stay
// usable, by whoever holds it, long after the purchase it was made for.
// Refusals carry x402's reasons ReasonValidAfter and ReasonValidBefore.
func CheckWindow(a eip3009.Authorization, maxTimeout time.Duration, now time.Time) error {
	if a.ValidAfter == nil || a.ValidBefore == nil {
		return refusal(ReasonValidBefore, "the authorization has no validity window")
	}
	t := big.NewInt(now.Unix())
	if a.ValidAfter.Cmp(t) >= 0 {
		return refusal(ReasonValidAfter, "the authorization is not valid yet (validAfter %s, now %d)", a.ValidAfter, t)
	}
	if a.ValidBefore.Cmp(t) <= 0 {
		return refusal(ReasonValidBefore, "the authorization has expired (validBefore %s, now %d)", a.ValidBefore, t)
	}
	limit := now.Add(maxTimeout + ClockSkew).Unix()
	if a.ValidBefore.Cmp(big.NewInt(limit)) > 0 {
		return refusal(ReasonValidBefore,
			"the authorization is valid for too long: validBefore %s is more than maxTimeoutSeconds (%d) and %ds after now (%d)",
			a.ValidBefore, int64(maxTimeout/time.Second), int64(ClockSkew/time.Second), t)
	}
	return nil
}
