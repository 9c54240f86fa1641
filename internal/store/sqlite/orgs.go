package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	orgSelect   = `SELECT ` + sqlstore.OrgColumns + ` FROM organizations`
	orgInsert   = `INSERT INTO organizations (` + sqlstore.OrgColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	orgUpdate   = `UPDATE organizations SET name = ?, slug = ?, plan = ?, disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ?`
	orgByID     = orgSelect + ` WHERE id = ?`
	orgBySlug   = orgSelect + ` WHERE slug = ?`
	orgsOrdered = orgSelect + ` ORDER BY created_at, id`
)

func getOrg(ctx context.Context, q querier, query, arg string) (store.Organization, error) {
	o, err := sqlstore.ScanOrg(q.QueryRowContext(ctx, query, arg))
	return o, wrapErr(err, "organization "+quote(arg))
}

func insertOrg(ctx context.Context, q querier, o store.Organization) error {
	_, err := q.ExecContext(ctx, orgInsert, sqlstore.OrgValues(o)...)
	return wrapErr(err, "organization "+quote(o.ID))
}

// CreateOrganizationWithOwner creates org and owner in one transaction. An
// empty owner.OrgID is set to org.ID; any other value than org.ID is an error.
func (s *Store) CreateOrganizationWithOwner(ctx context.Context, org store.Organization, owner store.User, a store.AuditEntry) error {
	owner, err := sqlstore.OrgOwner(org, owner)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
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
	return getOrg(ctx, s.reader, orgByID, id)
}

// GetOrganizationBySlug returns the organization with the given slug.
func (s *Store) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	return getOrg(ctx, s.reader, orgBySlug, slug)
}

// ListOrganizations lists every organization, oldest first.
func (s *Store) ListOrganizations(ctx context.Context) ([]store.Organization, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanOrg, orgsOrdered)
	return out, wrapErr(err, "list organizations")
}

// UpdateOrganization updates an organization; ID and CreatedAt cannot change.
func (s *Store) UpdateOrganization(ctx context.Context, id string, fn func(store.Organization) (store.Organization, error), a store.AuditEntry) (store.Organization, error) {
	return update(ctx, s, rowUpdate[store.Organization]{
		Get: func(ctx context.Context, q querier) (store.Organization, error) {
			return getOrg(ctx, q, orgByID, id)
		},
		Keep: sqlstore.KeepOrg,
		Put: func(ctx context.Context, q querier, o store.Organization) error {
			_, err := q.ExecContext(ctx, orgUpdate, o.Name, o.Slug, o.Plan, sqlstore.Micros(o.DisabledAt), sqlstore.OrgReason(o), sqlstore.Micros(o.UpdatedAt), o.ID)
			return wrapErr(err, "organization "+quote(o.ID))
		},
	}, fn, a)
}
