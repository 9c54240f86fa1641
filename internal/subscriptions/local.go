package subscriptions

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/eip3009"
	"github.com/tollgate/tollgate/internal/evm"
)

// Facilitator verifies and settles payments (x402's facilitator role).
type Facilitator interface {
	// Verify checks that p pays exactly what req asks; its error's text is
	// the reason sent to the payer.
	Verify(ctx context.Context, p Payment, req Requirement) error
	// Settle executes a verified payment and returns its transaction
	// reference.
	Settle(ctx context.Context, p Payment, req Requirement) (string, error)
	// Name is recorded with each payment: "local", or a URL.
	Name() string
}

// Requirement is what one offer asks for: the x402 requirements, and the
// token's EIP-712 domain name and version.
type Requirement struct {
	Network, Asset, PayTo, Amount string
	MaxTimeoutSeconds             int64
	AssetName, AssetVersion       string
	// Resource is the offer's purchase URL, and Description its
	// description (x402 version 1 requirements carry both).
	Resource, Description string
}

// ErrPaymentInvalid is wrapped by every refusal of Verify.
var ErrPaymentInvalid = errors.New("payment invalid")

// Local is the built-in facilitator, for development and tests: it verifies
// the EIP-3009 authorization offline (signature under the token's EIP-712
// domain, recipient, exact amount, validity window: see CheckWindow) and
// records settlements WITHOUT moving funds, which it says in every
// transaction reference and log line. Nonce reuse is refused where the payment is recorded: a store
// keeps each authorization once (store.Store.Purchase).
type Local struct {
	Clock  clock.Clock
	Logger *slog.Logger
}

// Name implements Facilitator.
func (l Local) Name() string { return "local" }

// Verify implements Facilitator. Its refusals are PaymentErrors with x402's
// reasons.
func (l Local) Verify(_ context.Context, p Payment, req Requirement) error {
	if p.Network != req.Network {
		return refusal(ReasonNetwork, "network %s, this API is paid on %s", p.Network, req.Network)
	}
	if a := p.Accepted; a != nil && (a.Network != req.Network || a.Amount != req.Amount ||
		!strings.EqualFold(a.Asset, req.Asset) || !strings.EqualFold(a.PayTo, req.PayTo)) {
		return refusal(ReasonRequirement, "the accepted requirements are not this offer's")
	}
	chain, ok := strings.CutPrefix(req.Network, "eip155:")
	chainID, err := strconv.ParseUint(chain, 10, 64)
	if !ok || err != nil {
		return refusal(ReasonNetwork, "the local facilitator settles on EVM networks only")
	}
	asset, err := evm.ParseAddress(req.Asset)
	if err != nil {
		return fmt.Errorf("subscriptions: asset %q: %w", req.Asset, err)
	}
	payTo, err := evm.ParseAddress(req.PayTo)
	if err != nil {
		return fmt.Errorf("subscriptions: pay_to %q: %w", req.PayTo, err)
	}
	a := p.Authorization
	if a.To != payTo {
		return refusal(ReasonRecipient, "the authorization pays %s, not %s", a.To.Hex(), payTo.Hex())
	}
	if want, _ := new(big.Int).SetString(req.Amount, 10); want == nil || a.Value.Cmp(want) != 0 {
		return refusal(ReasonValue, "the authorization is for %s, the offer costs %s", a.Value, req.Amount)
	}
	if err := CheckWindow(a, time.Duration(req.MaxTimeoutSeconds)*time.Second, l.Clock.Now()); err != nil {
		return err
	}
	domain := eip3009.TokenDomain(req.AssetName, req.AssetVersion, chainID, asset)
	if err := eip3009.Verify(domain, a, p.Signature); err != nil {
		return refusal(ReasonSignature, "signature: %v", err)
	}
	return nil
}

// Settle implements Facilitator: it moves nothing, and returns a reference
// that says so.
func (l Local) Settle(_ context.Context, p Payment, req Requirement) (string, error) {
	ref := "local-unsettled:0x" + hex.EncodeToString(p.Authorization.Nonce[:])
	if l.Logger != nil {
		l.Logger.Warn("x402 local facilitator: payment recorded WITHOUT moving funds (development only)",
			"network", req.Network, "payer", p.Authorization.From.Hex(), "amount", req.Amount, "reference", ref)
	}
	return ref, nil
}
