package postgres

import (
	"context"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	planSelect = `SELECT ` + sqlstore.PlanColumns + ` FROM plans`
	planUpsert = `INSERT INTO plans (` + sqlstore.PlanColumns + `) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET
			requests_per_second = excluded.requests_per_second,
			burst = excluded.burst,
			quota_units = excluded.quota_units,
			quota_period = excluded.quota_period,
			updated_at = excluded.updated_at`
	planByName   = planSelect + ` WHERE name = $1`
	plansOrdered = planSelect + ` ORDER BY name`
)

// UpsertPlan creates or replaces the plan named p.Name.
func (s *Store) UpsertPlan(ctx context.Context, p store.Plan) error {
	_, err := s.exec(ctx, planUpsert, sqlstore.PlanValues(p)...)
	return wrapErr(err, "plan "+quote(p.Name))
}

// GetPlan returns the plan with the given name.
func (s *Store) GetPlan(ctx context.Context, name string) (store.Plan, error) {
	p, err := sqlstore.ScanPlan(s.pool.QueryRow(ctx, planByName, name))
	return p, wrapErr(err, "plan "+quote(name))
}

// ListPlans lists every plan, ordered by name (bytewise).
func (s *Store) ListPlans(ctx context.Context) ([]store.Plan, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanPlan, plansOrdered)
	return out, wrapErr(err, "list plans")
}
