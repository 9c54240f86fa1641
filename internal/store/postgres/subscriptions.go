package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	// subscriptionLock serializes the purchases of one wallet, the first of
	// which has no subscription row to lock yet.
	subscriptionLock   = `SELECT pg_advisory_xact_lock($1, hashtext($2))`
	subscriptionSelect = `SELECT ` + sqlstore.SubscriptionColumns + ` FROM subscriptions`
	subscriptionUpsert = `INSERT INTO subscriptions (` + sqlstore.SubscriptionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (wallet) DO UPDATE SET
			plan = excluded.plan,
			started_at = excluded.started_at,
			expires_at = excluded.expires_at,
			updated_at = excluded.updated_at`
	subscriptionByWallet = subscriptionSelect + ` WHERE wallet = $1`
	subscriptionsOrdered = subscriptionSelect + ` ORDER BY created_at, wallet`
	subscriptionOrgPlan  = `UPDATE organizations SET plan = $1, updated_at = $2 WHERE id = $3`

	paymentInsert = `INSERT INTO payments (` + sqlstore.PaymentColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	paymentsOf    = `SELECT ` + sqlstore.PaymentColumns + ` FROM payments WHERE wallet = $1 ORDER BY time DESC, id DESC`
)

// Purchase records p and extends its wallet's subscription by d (see
// store.Store). p.ID and p.Time are filled in when empty. Purchases of one
// wallet run one after the other (an advisory lock on the wallet), so that
// each extends the subscription as the previous one left it; a payment whose
// authorization is being recorded by another purchase waits for it, and is
// then refused with store.ErrAlreadyExists.
func (s *Store) Purchase(ctx context.Context, p store.Payment, d time.Duration, a store.AuditEntry) (store.Subscription, error) {
	if err := sqlstore.CheckPurchase(p, d); err != nil {
		return store.Subscription{}, fmt.Errorf("postgres: %w", err)
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
		if _, err := tx.Exec(ctx, paymentInsert, sqlstore.PaymentValues(p)...); err != nil {
			return wrapErr(err, "payment "+quote(p.Authorization))
		}
		var err error
		sub, err = sqlstore.ScanSubscription(tx.QueryRow(ctx, subscriptionByWallet, p.Wallet))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			var org store.Organization
			org, sub = sqlstore.NewWalletSubscription(p, now)
			if err := insertOrg(ctx, tx, org); err != nil {
				return err
			}
		case err != nil:
			return wrapErr(err, "subscription of "+quote(p.Wallet))
		default:
			if _, err := tx.Exec(ctx, subscriptionOrgPlan, p.Plan, sqlstore.Micros(now), sub.OrgID); err != nil {
				return wrapErr(err, "organization "+quote(sub.OrgID))
			}
		}
		sub = sqlstore.ExtendSubscription(sub, p, d, now)
		if _, err := tx.Exec(ctx, subscriptionUpsert, sqlstore.SubscriptionValues(sub)...); err != nil {
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
	return sqlstore.NormalizeSubscription(sub), nil
}

// GetSubscription returns the subscription of wallet.
func (s *Store) GetSubscription(ctx context.Context, wallet string) (store.Subscription, error) {
	sub, err := sqlstore.ScanSubscription(s.pool.QueryRow(ctx, subscriptionByWallet, wallet))
	return sub, wrapErr(err, "subscription of "+quote(wallet))
}

// ListSubscriptions lists every subscription, oldest first.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanSubscription, subscriptionsOrdered)
	return out, wrapErr(err, "list subscriptions")
}

// ListPayments lists the payments of wallet, newest first.
func (s *Store) ListPayments(ctx context.Context, wallet string) ([]store.Payment, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanPayment, paymentsOf, wallet)
	return out, wrapErr(err, "list payments of "+quote(wallet))
}
