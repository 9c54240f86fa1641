package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	subscriptionSelect = `SELECT ` + sqlstore.SubscriptionColumns + ` FROM subscriptions`
	subscriptionUpsert = `INSERT INTO subscriptions (` + sqlstore.SubscriptionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (wallet) DO UPDATE SET
			plan = excluded.plan,
			started_at = excluded.started_at,
			expires_at = excluded.expires_at,
			updated_at = excluded.updated_at`
	subscriptionByWallet = subscriptionSelect + ` WHERE wallet = ?`
	subscriptionsOrdered = subscriptionSelect + ` ORDER BY created_at, wallet`
	subscriptionOrgPlan  = `UPDATE organizations SET plan = ?, updated_at = ? WHERE id = ?`

	paymentInsert = `INSERT INTO payments (` + sqlstore.PaymentColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	paymentsOf    = `SELECT ` + sqlstore.PaymentColumns + ` FROM payments WHERE wallet = ? ORDER BY time DESC, id DESC`
)

// Purchase records p and extends its wallet's subscription by d (see
// store.Store). p.ID and p.Time are filled in when empty.
func (s *Store) Purchase(ctx context.Context, p store.Payment, d time.Duration, a store.AuditEntry) (store.Subscription, error) {
	if err := sqlstore.CheckPurchase(p, d); err != nil {
		return store.Subscription{}, fmt.Errorf("sqlite: %w", err)
	}
	if p.ID == "" {
		p.ID = ids.New(ids.Payment)
	}
	now := s.clock.Now()
	p.Time = s.orNow(p.Time)
	var sub store.Subscription
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, paymentInsert, sqlstore.PaymentValues(p)...); err != nil {
			return wrapErr(err, "payment "+quote(p.Authorization))
		}
		var err error
		sub, err = sqlstore.ScanSubscription(tx.QueryRowContext(ctx, subscriptionByWallet, p.Wallet))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			var org store.Organization
			org, sub = sqlstore.NewWalletSubscription(p, now)
			if err := insertOrg(ctx, tx, org); err != nil {
				return err
			}
		case err != nil:
			return wrapErr(err, "subscription of "+quote(p.Wallet))
		default:
			if _, err := tx.ExecContext(ctx, subscriptionOrgPlan, p.Plan, sqlstore.Micros(now), sub.OrgID); err != nil {
				return wrapErr(err, "organization "+quote(sub.OrgID))
			}
		}
		sub = sqlstore.ExtendSubscription(sub, p, d, now)
		if _, err := tx.ExecContext(ctx, subscriptionUpsert, sqlstore.SubscriptionValues(sub)...); err != nil {
			return wrapErr(err, "subscription of "+quote(p.Wallet))
		}
		if a.OrgID == "" {
			a.OrgID = sub.OrgID
		}
		return s.writeAudit(ctx, tx, a, sub.OrgID)
	})
	if err != nil {
		return store.Subscription{}, err
	}
	return sqlstore.NormalizeSubscription(sub), nil
}

// GetSubscription returns the subscription of wallet.
func (s *Store) GetSubscription(ctx context.Context, wallet string) (store.Subscription, error) {
	sub, err := sqlstore.ScanSubscription(s.reader.QueryRowContext(ctx, subscriptionByWallet, wallet))
	return sub, wrapErr(err, "subscription of "+quote(wallet))
}

// ListSubscriptions lists every subscription, oldest first.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanSubscription, subscriptionsOrdered)
	return out, wrapErr(err, "list subscriptions")
}

// ListPayments lists the payments of wallet, newest first.
func (s *Store) ListPayments(ctx context.Context, wallet string) ([]store.Payment, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanPayment, paymentsOf, wallet)
	return out, wrapErr(err, "list payments of "+quote(wallet))
}
