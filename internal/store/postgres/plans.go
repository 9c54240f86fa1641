package postgres

import (
	"context"

	"github.com/tollgate/tollgate/internal/store"
)

const (
	planColumns = `name, requests_per_second, burst, quota_units, quota_period, updated_at`
	planSelect  = `SELECT ` + planColumns + ` FROM plans`
	planUpsert  = `INSERT INTO plans (` + planColumns + `) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET
			requests_per_second = excluded.requests_per_second,
			burst = excluded.burst,
			quota_units = excluded.quota_units,
			quota_period = excluded.quota_period,
			updated_at = excluded.updated_at`
	planByName   = planSelect + ` WHERE name = $1`
	plansOrdered = planSelect + ` ORDER BY name`
)

func scanPlan(r rowScanner) (store.Plan, error) {
	var p store.Plan
	err := r.Scan(&p.Name, &p.RequestsPerSecond, &p.Burst, &p.QuotaUnits, &p.QuotaPeriod, timeCol{&p.UpdatedAt})
	return p, err
}

// UpsertPlan creates or replaces the plan named p.Name.
func (s *Store) UpsertPlan(ctx context.Context, p store.Plan) error {
	_, err := s.exec(ctx, planUpsert, p.Name, p.RequestsPerSecond, p.Burst, p.QuotaUnits,
		p.QuotaPeriod, micros(p.UpdatedAt))
	return wrapErr(err, "plan "+quote(p.Name))
}

// GetPlan returns the plan with the given name.
func (s *Store) GetPlan(ctx context.Context, name string) (store.Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, planByName, name))
	return p, wrapErr(err, "plan "+quote(name))
}

// ListPlans lists every plan, ordered by name (bytewise).
func (s *Store) ListPlans(ctx context.Context) ([]store.Plan, error) {
	out, err := queryAll(ctx, s.pool, scanPlan, plansOrdered)
	return out, wrapErr(err, "list plans")
}
