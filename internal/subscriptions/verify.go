package subscriptions

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/siwx"
)

// VerifySIWX returns the VerifyFunc of v for SIWX tokens: the wallet as its
// account ("namespace:address"), and errors with the seed's codes:
// EXPIRED_TOKEN, INVALID_SIGNATURE, or INVALID_TOKEN for anything else
// (malformed, another domain, URI or chain, a lifetime too long, not yet
// valid). The reason siwx gives goes into the message: it names what the
// signer must fix and holds nothing secret.
func VerifySIWX(v *siwx.Verifier) VerifyFunc {
	return func(token string) (string, error) {
		w, _, err := v.Verify(token)
		if err != nil {
			return "", apiError("SIWX ", err)
		}
		return w.Account(), nil
	}
}

// VerifySIWXHeader returns the VerifyProofFunc of v for SIGN-IN-WITH-X
// headers, with the errors of VerifySIWX.
func VerifySIWXHeader(v *siwx.Verifier) VerifyProofFunc {
	return func(header string) (Proof, error) {
		r, err := v.VerifyProof(header)
		if err != nil {
			return Proof{}, apiError(siwx.Header+" ", err)
		}
		return Proof{Wallet: r.Wallet.Account(), Nonce: r.Nonce, Until: later(r.Expires, r.NonceExpires)}, nil
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// apiError maps a siwx error to the API's.
func apiError(prefix string, err error) error {
	msg := prefix + strings.TrimPrefix(err.Error(), "siwx: ")
	switch {
	case errors.Is(err, siwx.ErrExpired):
		return apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, msg).Wrap(err)
	case errors.Is(err, siwx.ErrSignature):
		return apierror.New(http.StatusUnauthorized, apierror.InvalidSignature, msg).Wrap(err)
	default:
		return apierror.New(http.StatusUnauthorized, apierror.InvalidToken, msg).Wrap(err)
	}
}
