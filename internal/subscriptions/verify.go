package subscriptions

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/siwx"
)

// VerifySIWX returns the VerifyFunc of v: the wallet as its account
// ("namespace:address"), and errors with the seed's codes: EXPIRED_TOKEN,
// INVALID_SIGNATURE, or INVALID_TOKEN for anything else (malformed, another
// domain, URI or chain, a lifetime too long, not yet valid). The reason
// siwx gives goes into the message: it names what the signer must fix and
// holds nothing secret.
func VerifySIWX(v *siwx.Verifier) VerifyFunc {
	return func(token string) (string, error) {
		w, _, err := v.Verify(token)
		if err == nil {
			return w.Account(), nil
		}
		msg := strings.TrimPrefix(err.Error(), "siwx: ")
		switch {
		case errors.Is(err, siwx.ErrExpired):
			return "", apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, "SIWX "+msg).Wrap(err)
		case errors.Is(err, siwx.ErrSignature):
			return "", apierror.New(http.StatusUnauthorized, apierror.InvalidSignature, "SIWX "+msg).Wrap(err)
		default:
			return "", apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "SIWX "+msg).Wrap(err)
		}
	}
}
