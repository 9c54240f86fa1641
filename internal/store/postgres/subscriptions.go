package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

const (
	// subscriptionLock serializes the purchases of one wallet, the first of
	// which has no subscription row to lock yet.
	subscriptionLock    = `SELECT pg_advisory_xact_lock($1, hashtext($2))`
	subscriptionColumns = `wallet, org_id, plan, started_at, expires_at, created_at, updated_at`
	subscriptionSelect  = `SELECT ` + subscriptionColumns + ` FROM subscriptions`
	subscriptionUpsert  = `INSERT INTO subscriptions (` + subscriptionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (wallet) DO UPDATE SET
			plan = excluded.plan,
			started_at = excluded.started_at,
			expires_at = excluded.expires_at,
			updated_at = excluded.updated_at`
	subscriptionByWallet = subscriptionSelect + ` WHERE wallet = $1`
	subscriptionsOrdered = subscriptionSelect + ` ORDER BY created_at, wallet`
	subscriptionOrgPlan  = `UPDATE organizations SET plan = $1, updated_at = $2 WHERE id = $3`

	paymentColumns = `id, authorization_key, wallet, plan, network, asset, amount, pay_to, transaction_ref, facilitator, time`
	paymentInsert  = `INSERT INTO payments (` + paymentColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	paymentsOf     = `SELECT ` + paymentColumns + ` FROM payments WHERE wallet = $1 ORDER BY time DESC, id DESC`
)

func scanSubscription(r rowScanner) (store.Subscription, error) {
	var s store.Subscription
	err := r.Scan(&s.Wallet, &s.OrgID, &s.Plan, timeCol{&s.StartedAt}, timeCol{&s.ExpiresAt},
		timeCol{&s.CreatedAt}, timeCol{&s.UpdatedAt})
	return s, err
}

func scanPayment(r rowScanner) (store.Payment, error) {
	var p store.Payment
	err := r.Scan(&p.ID, &p.Authorization, &p.Wallet, &p.Plan, &p.Network, &p.Asset, &p.Amount,
		&p.PayTo, &p.Transaction, &p.Facilitator, timeCol{&p.Time})
	return p, err
}

// Purchase records p and extends its wallet's subscription by d (see
// store.Store). p.ID and p.Time are filled in when empty. Purchases of one
// wallet run one after the other (an advisory lock on the wallet), so that
// each extends the subscription as the previous one left it; a payment whose
// authorization is being recorded by another purchase waits for it, and is
// then refused with store.ErrAlreadyExists.
func (s *Store) Purchase(ctx context.Context, p store.Payment, d time.Duration, a store.AuditEntry) (store.Subscription, error) {
	switch {
	case p.Wallet == "" || p.Authorization == "" || p.Plan == "":
		return store.Subscription{}, errors.New("postgres: purchase: wallet, authorization and plan are required")
	case d <= 0:
		return store.Subscription{}, fmt.Errorf("postgres: purchase: duration %v is not positive", d)
	}
	if p.ID == "" {
		p.ID = ids.New(ids.Payment)
	}
	now := s.clock.Now()
	p.Time = s.orNow(p.Time)
	var sub store.Subscription
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, subscriptionLock, lockPurchase, p.Wallet); err != nil {
			return wrapErr(err, "lock subscription of "+quote(p.Wallet))
		}
		if _, err := tx.Exec(ctx, paymentInsert, p.ID, p.Authorization, p.Wallet, p.Plan, p.Network,
			p.Asset, p.Amount, p.PayTo, p.Transaction, p.Facilitator, micros(p.Time)); err != nil {
			return wrapErr(err, "payment "+quote(p.Authorization))
		}
		var err error
		sub, err = scanSubscription(tx.QueryRow(ctx, subscriptionByWallet, p.Wallet))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			org := store.Organization{ID: ids.New(ids.Organization), Name: p.Wallet, Plan: p.Plan, CreatedAt: now, UpdatedAt: now}
			org.Slug = "wallet-" + strings.TrimPrefix(org.ID, ids.Organization+"_")
			if err := insertOrg(ctx, tx, org); err != nil {
				return err
			}
			sub = store.Subscription{Wallet: p.Wallet, OrgID: org.ID, StartedAt: p.Time, ExpiresAt: p.Time, CreatedAt: now}
		case err != nil:
			return wrapErr(err, "subscription of "+quote(p.Wallet))
		default:
			if _, err := tx.Exec(ctx, subscriptionOrgPlan, p.Plan, micros(now), sub.OrgID); err != nil {
				return wrapErr(err, "organization "+quote(sub.OrgID))
			}
		}
		if !sub.Active(p.Time) {
			sub.StartedAt, sub.ExpiresAt = p.Time, p.Time
		}
		sub.ExpiresAt = sub.ExpiresAt.Add(d).Truncate(time.Microsecond)
		sub.StartedAt = sub.StartedAt.Truncate(time.Microsecond)
		sub.Plan, sub.UpdatedAt = p.Plan, now
		if _, err := tx.Exec(ctx, subscriptionUpsert, sub.Wallet, sub.OrgID, sub.Plan, micros(sub.StartedAt),
			micros(sub.ExpiresAt), micros(sub.CreatedAt), micros(sub.UpdatedAt)); err != nil {
			return wrapErr(err, "subscription of "+quote(p.Wallet))
		}
		entry := a // a copy: the transaction may run again
		if entry.OrgID == "" {
			entry.OrgID = sub.OrgID
		}
		return s.writeAudit(ctx, tx, entry, sub.OrgID)
	})
	if err != nil {
		return store.Subscription{}, err
	}
	return normalizeSubscription(sub), nil
}

// normalizeSubscription returns sub as it reads back: times in UTC, at
// microsecond precision.
func normalizeSubscription(sub store.Subscription) store.Subscription {
	for _, t := range []*time.Time{&sub.StartedAt, &sub.ExpiresAt, &sub.CreatedAt, &sub.UpdatedAt} {
		if !t.IsZero() {
			*t = t.Truncate(time.Microsecond).UTC()
		}
	}
	return sub
}

// GetSubscription returns the subscription of wallet.
func (s *Store) GetSubscription(ctx context.Context, wallet string) (store.Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, subscriptionByWallet, wallet))
	return sub, wrapErr(err, "subscription of "+quote(wallet))
}

// ListSubscriptions lists every subscription, oldest first.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	out, err := queryAll(ctx, s.pool, scanSubscription, subscriptionsOrdered)
	return out, wrapErr(err, "list subscriptions")
}

// ListPayments lists the payments of wallet, newest first.
func (s *Store) ListPayments(ctx context.Context, wallet string) ([]store.Payment, error) {
	out, err := queryAll(ctx, s.pool, scanPayment, paymentsOf, wallet)
	return out, wrapErr(err, "list payments of "+quote(wallet))
}
