package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// CheckPurchase refuses a payment without a wallet, an authorization or a
// plan, and a duration that is not positive.
func CheckPurchase(p store.Payment, d time.Duration) error {
	switch {
	case p.Wallet == "" || p.Authorization == "" || p.Plan == "":
		return errors.New("purchase: wallet, authorization and plan are required")
	case d <= 0:
		return fmt.Errorf("purchase: duration %v is not positive", d)
	}
	return nil
}

// NewWalletSubscription returns the organization a wallet's first purchase
// p creates at now, named after the wallet, and the wallet's subscription
// to it, which starts and expires at p.Time until ExtendSubscription
// extends it.
func NewWalletSubscription(p store.Payment, now time.Time) (store.Organization, store.Subscription) {
	org := store.Organization{ID: ids.New(ids.Organization), Name: p.Wallet, Plan: p.Plan, CreatedAt: now, UpdatedAt: now}
	org.Slug = "wallet-" + strings.TrimPrefix(org.ID, ids.Organization+"_")
	sub := store.Subscription{Wallet: p.Wallet, OrgID: org.ID, StartedAt: p.Time, ExpiresAt: p.Time, CreatedAt: now}
	return org, sub
}

// ExtendSubscription returns sub extended by the purchase p of d at now: an
// active subscription (at p.Time) expires d later, an expired one starts
// again at p.Time and expires d after it; either way it is on p's plan from
// now on. Its times are at microsecond precision, as stored.
func ExtendSubscription(sub store.Subscription, p store.Payment, d time.Duration, now time.Time) store.Subscription {
	if !sub.Active(p.Time) {
		sub.StartedAt, sub.ExpiresAt = p.Time, p.Time
	}
	sub.ExpiresAt = sub.ExpiresAt.Add(d).Truncate(time.Microsecond)
	sub.StartedAt = sub.StartedAt.Truncate(time.Microsecond)
	sub.Plan, sub.UpdatedAt = p.Plan, now
	return sub
}

// NormalizeSubscription returns sub as it reads back: times in UTC, at
// microsecond precision.
func NormalizeSubscription(sub store.Subscription) store.Subscription {
	for _, t := range []*time.Time{&sub.StartedAt, &sub.ExpiresAt, &sub.CreatedAt, &sub.UpdatedAt} {
		if !t.IsZero() {
			*t = t.Truncate(time.Microsecond).UTC()
		}
	}
	return sub
}
