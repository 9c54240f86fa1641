// Package signingkeys keeps the life cycle of the keys in the store's
// signing-key table, which two keyrings share: package tokens' RS256 keys,
// which sign access tokens, and package respsign's ES256K keys, which sign
// responses. Each keyring sees and changes only the keys of its own
// algorithm, so that rotating one never retires or deletes the other's.
package signingkeys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// Store is the part of the store this package uses.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	DeleteSigningKey(ctx context.Context, id string) error
}

var _ Store = store.Store(nil)

// List returns the stored keys of algorithm, oldest first.
func List(ctx context.Context, st Store, algorithm string) ([]store.SigningKey, error) {
	all, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s keys: %w", algorithm, err)
	}
	keys := make([]store.SigningKey, 0, len(all))
	for _, k := range all {
		if k.Algorithm == algorithm {
			keys = append(keys, k)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
	return keys, nil
}

// RetireOlder retires, at now, every key of algorithm that is not retired
// yet and not newer than newID, a key just stored to replace them; it
// returns the IDs of the keys it retired. Keys newer than newID, created by
// a concurrent rotation elsewhere, are left alone, so that two rotations
// never leave no key to sign with. A key retired or deleted meanwhile by
// another process is skipped.
func RetireOlder(ctx context.Context, st Store, algorithm, newID string, now time.Time) (retired []string, err error) {
	keys, err := List(ctx, st, algorithm)
	if err != nil {
		return nil, err
	}
	var created time.Time
	for _, k := range keys {
		if k.ID == newID {
			created = k.CreatedAt // as stored, which may be truncated
		}
	}
	if created.IsZero() {
		return nil, fmt.Errorf("new key %s is not listed", newID)
	}
	for _, k := range keys {
		if k.ID == newID || !k.RetiredAt.IsZero() || k.CreatedAt.After(created) {
			continue
		}
		if err := st.RetireSigningKey(ctx, k.ID, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return retired, fmt.Errorf("retire key %s: %w", k.ID, err)
		}
		retired = append(retired, k.ID)
	}
	return retired, nil
}

// Prune deletes the keys of algorithm retired before cutoff and returns
// their IDs. It never deletes the key that signs (the newest one not
// retired) nor active, the key the caller signs with as of its last
// reload. A key deleted meanwhile by another process is skipped.
func Prune(ctx context.Context, st Store, algorithm string, cutoff time.Time, active string) (deleted []string, err error) {
	keys, err := List(ctx, st, algorithm)
	if err != nil {
		return nil, err
	}
	signing := ""
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			signing = k.ID // newest non-retired wins
		}
	}
	for _, k := range keys {
		if k.RetiredAt.IsZero() || !k.RetiredAt.Before(cutoff) || k.ID == signing || k.ID == active {
			continue
		}
		if err := st.DeleteSigningKey(ctx, k.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return deleted, fmt.Errorf("delete key %s: %w", k.ID, err)
		}
		deleted = append(deleted, k.ID)
	}
	return deleted, nil
}
