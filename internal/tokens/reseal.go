package tokens

import (
	"context"
	"fmt"

	"github.com/tollgate/tollgate/internal/store"
)

// Resealer opens sealed values and seals them again under the current
// master key; *secretbox.Box implements it.
type Resealer interface {
	Sealer
	NeedsReseal(sealed []byte) bool
}

// ResealStore is the part of the store ResealKeys uses.
type ResealStore interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	ResealSigningKey(ctx context.Context, id string, sealed []byte) error
}

// ResealKeys seals again, under the primary master key, every stored
// signing key sealed under a previous one. It returns how many it resealed.
// Running servers need no reload: the key itself does not change.
func ResealKeys(ctx context.Context, st ResealStore, box Resealer) (int, error) {
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("tokens: list keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		if !box.NeedsReseal(k.PrivateKey) {
			continue
		}
		der, err := box.Open(k.PrivateKey, associatedData(k.ID))
		if err != nil {
			return n, fmt.Errorf("tokens: open key %s (is its master key in previous_master_keys?): %w", k.ID, err)
		}
		sealed, err := box.Seal(der, associatedData(k.ID))
		if err != nil {
			return n, err
		}
		if err := st.ResealSigningKey(ctx, k.ID, sealed); err != nil {
			return n, fmt.Errorf("tokens: reseal key %s: %w", k.ID, err)
		}
		n++
	}
	return n, nil
}
