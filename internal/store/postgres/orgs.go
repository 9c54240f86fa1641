package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	orgSelect     = `SELECT ` + sqlstore.OrgColumns + ` FROM organizations`
	orgInsert     = `INSERT INTO organizations (` + sqlstore.OrgColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	orgUpdate     = `UPDATE organizations SET name = $1, slug = $2, plan = $3, disabled_at = $4, disabled_reason = $5, updated_at = $6 WHERE id = $7`
	orgByID       = orgSelect + ` WHERE id = $1`
	orgByIDForUpd = orgByID + ` FOR UPDATE`
	orgBySlug     = orgSelect + ` WHERE slug = $1`
	orgsOrdered   = orgSelect + ` ORDER BY created_at, id`
)

func getOrg(ctx context.Context, q querier, query, arg string) (store.Organization, error) {
	o, err := sqlstore.ScanOrg(q.QueryRow(ctx, query, arg))
	return o, wrapErr(err, "organization "+quote(arg))
}

func insertOrg(ctx context.Context, q querier, o store.Organization) error {
	_, err := q.Exec(ctx, orgInsert, sqlstore.OrgValues(o)...)
	return wrapErr(err, "organization "+quote(o.ID))
}

// CreateOrganizationWithOwner creates org and owner in one transaction. An
// empty owner.OrgID is set to org.ID; any other value than org.ID is an error.
func (s *Store) CreateOrganizationWithOwner(ctx context.Context, org store.Organization, owner store.User, a store.AuditEntry) error {
	owner, err := sqlstore.OrgOwner(org, owner)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := insertOrg(ctx, tx, org); err != nil {
			return err
		}
		if err := insertUser(ctx, tx, owner); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, a, org.ID)
	})
}

// GetOrganization returns the organization with the given ID.
func (s *Store) GetOrganization(ctx context.Context, id string) (store.Organization, error) {
	return getOrg(ctx, s.pool, orgByID, id)
}

// GetOrganizationBySlug returns the organization with the given slug.
func (s *Store) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	return getOrg(ctx, s.pool, orgBySlug, slug)
}

// ListOrganizations lists every organization, oldest first.
func (s *Store) ListOrganizations(ctx context.Context) ([]store.Organization, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanOrg, orgsOrdered)
	return out, wrapErr(err, "list organizations")
}

// UpdateOrganization updates an organization; ID and CreatedAt cannot change.
func (s *Store) UpdateOrganization(ctx context.Context, id string, fn func(store.Organization) (store.Organization, error), a store.AuditEntry) (store.Organization, error) {
	return update(ctx, s, rowUpdate[store.Organization]{
		Get: func(ctx context.Context, q querier) (store.Organization, error) {
			return getOrg(ctx, q, orgByIDForUpd, id)
		},
		Keep: sqlstore.KeepOrg,
		Put: func(ctx context.Context, q querier, o store.Organization) error {
			_, err := q.Exec(ctx, orgUpdate, o.Name, o.Slug, o.Plan, sqlstore.Micros(o.DisabledAt), sqlstore.OrgReason(o), sqlstore.Micros(o.UpdatedAt), o.ID)
			return wrapErr(err, "organization "+quote(o.ID))
		},
	}, fn, a)
}
