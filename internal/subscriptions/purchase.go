package subscriptions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// Purchases records purchases; store.Store is one.
type Purchases interface {
	Purchase(ctx context.Context, p store.Payment, d time.Duration, a store.AuditEntry) (store.Subscription, error)
}

// Shop sells the catalog's offers: POST /x402/purchase?plan=NAME.
type Shop struct {
	Catalog     *Catalog
	Facilitator Facilitator
	Purchases   Purchases
	// SignIn, when set, forgets the buyer's cached subscription, so that
	// its next request on this node sees the purchase.
	SignIn *SignIn
	// Logger records settled payments that could not be recorded, for the
	// operator to reconcile. Nil discards.
	Logger *slog.Logger
	// Events reports subscription.created for each purchase; nil reports
	// nothing.
	Events events.Func
	// Subscriptions, when set, refuses a wallet whose organization an
	// operator disabled before its payment is settled: it would buy
	// nothing it could use.
	Subscriptions Subscriptions
	// Clock tells the time payments' validity windows are checked at; nil
	// means the catalog's.
	Clock clock.Clock
}

func (s *Shop) now() time.Time {
	if s.Clock != nil {
		return s.Clock.Now()
	}
	return s.Catalog.clock.Now()
}

// Recording a settled payment is retried this many times, this far apart
// (doubling): the funds have moved, the subscription must follow.
const (
	recordAttempts = 4
	recordBackoff  = 100 * time.Millisecond
)

// SubscriptionView is a subscription as the purchase answer shows it.
type SubscriptionView struct {
	Wallet         string    `json:"wallet"`
	OrganizationID string    `json:"organization_id"`
	Plan           string    `json:"plan"`
	StartedAt      time.Time `json:"started_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// PurchaseResult is the body of a successful purchase.
type PurchaseResult struct {
	Subscription SubscriptionView `json:"subscription"`
	Transaction  string           `json:"transaction"`
	Facilitator  string           `json:"facilitator"`
}

// settlement is x402's SettlementResponse, sent base64-encoded in
// PAYMENT-RESPONSE (and X-PAYMENT-RESPONSE for version 1).
type settlement struct {
	Success     bool   `json:"success"`
	ErrorReason string `json:"errorReason,omitempty"`
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
	Payer       string `json:"payer"`
}

// checkOrg refuses a wallet whose organization is disabled; a wallet
// without a subscription yet has none.
func (s *Shop) checkOrg(ctx context.Context, wallet string) error {
	if s.Subscriptions == nil {
		return nil
	}
	sub, err := s.Subscriptions.GetSubscription(ctx, wallet)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	org, err := s.Subscriptions.GetOrganization(ctx, sub.OrgID)
	if err != nil {
		return err
	}
	if org.Disabled() {
		return apierror.ErrOrgDisabled
	}
	return nil
}

var errPaymentUsed = apierror.New(http.StatusConflict, apierror.Conflict, "this payment authorization has been used already")

// ServePurchase takes the payment in PAYMENT-SIGNATURE (x402 version 2) or
// X-PAYMENT (version 1), has the facilitator verify and settle it, and
// creates or extends the payer wallet's subscription to the plan. Without a
// payment it answers 402 with the requirements; a payment that does not pay
// this offer is 402 with the reason (x402's, such as
// invalid_exact_evm_payload_authorization_valid_before, when Tollgate or the
// local facilitator refuses it; invalid_payment otherwise, with the remote
// facilitator's in the message); an authorization used before is 409.
func (s *Shop) ServePurchase(w http.ResponseWriter, r *http.Request) error {
	plan := r.URL.Query().Get("plan")
	offer, ok := s.Catalog.Offer(plan)
	if !ok {
		return apierror.Invalid("plan", "no offer of plan %q: see %s", plan, PricingPath)
	}
	req, _ := s.Catalog.Requirement(plan)
	header, version := r.Header.Get(HeaderPaymentSignature), 2
	if header == "" {
		header, version = r.Header.Get(HeaderXPayment), 1
	}
	if header == "" {
		return s.Catalog.PaymentRequiredFor(plan).WithReason("no_payment")
	}
	p, err := DecodePayment(header, version)
	if err != nil {
		e := s.Catalog.PaymentRequiredFor(plan).WithReason("invalid_payment").Wrap(err)
		e.Message = err.Error()
		return e
	}
	// Checked here whatever the facilitator checks: an authorization that
	// outlives the offer's maxTimeoutSeconds is refused before anyone
	// else sees it.
	err = CheckWindow(p.Authorization, time.Duration(req.MaxTimeoutSeconds)*time.Second, s.now())
	if err == nil {
		err = s.Facilitator.Verify(r.Context(), p, req)
	}
	if err != nil {
		if errors.Is(err, ErrPaymentInvalid) {
			reason := reasonOf(err)
			if reason == "" {
				reason = "invalid_payment"
			}
			e := s.Catalog.PaymentRequiredFor(plan).WithReason(reason)
			e.Message = err.Error()
			return e
		}
		return apierror.New(http.StatusBadGateway, apierror.BadGateway, "the payment facilitator failed").Wrap(err)
	}
	if err := s.checkOrg(r.Context(), "eip155:"+p.Authorization.From.Hex()); err != nil {
		return err
	}
	// From settlement on, the buyer hanging up must not stop the work:
	// funds that move must buy the subscription.
	ctx := context.WithoutCancel(r.Context())
	tx, err := s.Facilitator.Settle(ctx, p, req)
	if err != nil {
		if errors.Is(err, ErrPaymentInvalid) {
			e := s.Catalog.PaymentRequiredFor(plan).WithReason("settlement_failed")
			e.Message = err.Error()
			return e
		}
		return apierror.New(http.StatusBadGateway, apierror.BadGateway, "the payment could not be settled").Wrap(err)
	}
	wallet := "eip155:" + p.Authorization.From.Hex()
	info := reqinfo.From(r.Context())
	ip := ""
	if info.ClientIP.IsValid() {
		ip = info.ClientIP.String()
	}
	payment := store.Payment{
		Authorization: p.Key(req.Asset), Wallet: wallet, Plan: plan, Network: req.Network, Asset: req.Asset,
		Amount: req.Amount, PayTo: req.PayTo, Transaction: tx, Facilitator: s.Facilitator.Name(),
	}
	audit := store.AuditEntry{
		ActorType: store.ActorAnon, ActorID: wallet, Action: "subscription.purchase", TargetType: "organization",
		IP: ip, Details: map[string]string{"plan": plan, "amount": req.Amount, "network": req.Network, "transaction": tx},
	}
	var sub store.Subscription
	for i, wait := 0, recordBackoff; ; i, wait = i+1, 2*wait {
		sub, err = s.Purchases.Purchase(ctx, payment, offer.Duration, audit)
		if err == nil || errors.Is(err, store.ErrAlreadyExists) || i == recordAttempts-1 {
			break
		}
		time.Sleep(wait)
	}
	if errors.Is(err, store.ErrAlreadyExists) {
		return errPaymentUsed
	}
	if err != nil {
		if s.Logger != nil {
			s.Logger.Error("x402: a SETTLED payment could not be recorded: reconcile it by hand",
				"wallet", wallet, "plan", plan, "amount", req.Amount, "network", req.Network,
				"transaction", tx, "facilitator", s.Facilitator.Name(), "authorization", payment.Authorization, "err", err)
		}
		return fmt.Errorf("subscriptions: record purchase: %w", err)
	}
	if s.SignIn != nil {
		s.SignIn.Forget(wallet)
	}
	if s.Events != nil {
		s.Events(ctx, sub.OrgID, events.SubscriptionCreated, map[string]any{
			"wallet": sub.Wallet, "organization_id": sub.OrgID, "plan": sub.Plan,
			"started_at": sub.StartedAt.UTC(), "expires_at": sub.ExpiresAt.UTC(),
			// A purchase while subscribed extends the subscription.
			"renewal": sub.ExpiresAt.Add(-offer.Duration).After(sub.StartedAt),
			"amount":  req.Amount, "asset": req.Asset, "network": req.Network,
			"transaction": tx, "facilitator": s.Facilitator.Name(),
		})
	}
	resp, err := json.Marshal(settlement{Success: true, Transaction: tx, Network: req.Network, Payer: p.Authorization.From.Hex()})
	if err != nil {
		return err
	}
	name := HeaderPaymentResponse
	if version == 1 {
		name = HeaderXPaymentResponse
	}
	w.Header().Set(name, base64.StdEncoding.EncodeToString(resp))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(PurchaseResult{
		Subscription: SubscriptionView{Wallet: sub.Wallet, OrganizationID: sub.OrgID, Plan: sub.Plan, StartedAt: sub.StartedAt, ExpiresAt: sub.ExpiresAt},
		Transaction:  tx, Facilitator: s.Facilitator.Name(),
	})
}
