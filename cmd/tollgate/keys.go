package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/logging"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/signingkeys"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
)

// Statuses of a signing key in `keys list`.
const (
	keySigning  = "signing"     // signs new tokens
	keyRetired  = "retired"     // verifies tokens it signed until it is pruned
	keyVerifies = "verify-only" // not retired, but a newer key signs
)

// signingKey is a signing key as `keys list --json` prints it.
type signingKey struct {
	ID        string     `json:"id"`
	Algorithm string     `json:"algorithm"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at"`
}

func signingKeyView(k tokens.KeyInfo) signingKey {
	v := signingKey{ID: k.ID, Algorithm: k.Algorithm, Status: keyVerifies, CreatedAt: k.CreatedAt.UTC()}
	if !k.RetiredAt.IsZero() {
		r := k.RetiredAt.UTC()
		v.RetiredAt = &r
	}
	switch {
	case k.Signing:
		v.Status = keySigning
	case v.RetiredAt != nil:
		v.Status = keyRetired
	}
	return v
}

// rotation is the result of `keys rotate --json`.
type rotation struct {
	KeyID   string   `json:"key_id"`
	Retired []string `json:"retired"`
}

func keysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Rotate and list the keys that sign access tokens (or, with --responses, responses)",
		Long: `Rotate and list the RSA keys that sign access tokens. Every stored key is
published in /.well-known/jwks.json, so tokens signed by a retired key stay
valid until they expire.

With --responses: the secp256k1 keys that sign responses (X-Signature),
published at /.well-known/response-signing-key; a retired key stays published
for response_signing.retired_key_grace.`,
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key and retire the current one",
		Long: `Make a new signing key and retire the current one. Running servers switch to the
new key within their key reload interval (1 minute); tokens signed by the retired
key stay valid until they expire.`,
		Args: cobra.NoArgs,
		RunE: e.withKeyring(true, func(ctx context.Context, k *tokens.Keyring) error {
			id, retired, err := k.Rotate(ctx)
			if err != nil {
				return err
			}
			return e.printRotation("signing key", id, retired, "Tokens signed by a retired key stay valid until they expire.")
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys, oldest first",
		Args:  cobra.NoArgs,
		RunE: e.withKeyring(false, func(_ context.Context, k *tokens.Keyring) error {
			var keys []tokens.KeyInfo
			if k != nil {
				keys = k.Keys()
			}
			return e.printKeys(keys)
		}),
	}
	var responses bool
	cmd.PersistentFlags().BoolVar(&responses, "responses", false,
		"the secp256k1 keys that sign responses (X-Signature), published at "+respsign.WellKnownPath)
	jwtRotate, jwtList := rotate.RunE, list.RunE
	rotate.RunE = func(c *cobra.Command, args []string) error {
		if !responses {
			return jwtRotate(c, args)
		}
		return e.withResponseKeyring(true, func(ctx context.Context, k *respsign.Keyring) error {
			id, retired, err := k.Rotate(ctx)
			if err != nil {
				return err
			}
			return e.printRotation("response signing key", id, retired, "A retired key stays published for response_signing.retired_key_grace.")
		})(c, args)
	}
	list.RunE = func(c *cobra.Command, args []string) error {
		if !responses {
			return jwtList(c, args)
		}
		return e.withResponseKeyring(false, func(_ context.Context, k *respsign.Keyring) error {
			var keys []tokens.KeyInfo
			if k != nil {
				for _, ki := range k.Keys() {
					keys = append(keys, tokens.KeyInfo{ID: ki.ID, Algorithm: ki.Algorithm, CreatedAt: ki.CreatedAt, RetiredAt: ki.RetiredAt, Signing: ki.Signing})
				}
			}
			return e.printKeys(keys)
		})(c, args)
	}
	cmd.AddCommand(rotate, list)
	addJSONFlag(e, cmd)
	return cmd
}

// printRotation reports a rotation to what: the new key, the keys it
// retired, and what becomes of them.
func (e *env) printRotation(what, id string, retired []string, fate string) error {
	if e.json {
		return e.printJSON(rotation{KeyID: id, Retired: append([]string{}, retired...)})
	}
	was := "none"
	if len(retired) > 0 {
		was = strings.Join(retired, ", ")
	}
	fmt.Fprintf(e.out, "new %s: %s\nretired: %s\n\n", what, id, was)
	fmt.Fprintln(e.out, "Running servers switch to the new key within their key reload interval (1 minute).\n"+fate)
	return nil
}

// withResponseKeyring is withKeyring for the keys that sign responses.
func (e *env) withResponseKeyring(generate bool, f func(ctx context.Context, k *respsign.Keyring) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, log, st, err := e.openStore(ctx)
		if err != nil {
			return err
		}
		err = func() error {
			if !generate && !hasKeys(ctx, st, respsign.Algorithm) {
				return f(ctx, nil)
			}
			box, err := server.LoadMasterKey(cfg, log)
			if err != nil {
				return err
			}
			k, err := respsign.LoadKeyring(ctx, st, box, clock.System{})
			if err != nil {
				return err
			}
			return f(ctx, k)
		}()
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// hasKeys reports whether st holds a signing key of algorithm (true when
// it cannot tell: the caller then loads the keyring and reports the error).
func hasKeys(ctx context.Context, st store.Store, algorithm string) bool {
	keys, err := signingkeys.List(ctx, st, algorithm)
	return err != nil || len(keys) > 0
}

func (e *env) printKeys(keys []tokens.KeyInfo) error {
	views := make([]signingKey, 0, len(keys))
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		v := signingKeyView(k)
		views = append(views, v)
		rows = append(rows, []string{v.ID, v.Algorithm, when(&v.CreatedAt), when(v.RetiredAt), v.Status})
	}
	if e.json {
		return e.printJSON(controlapi.List[signingKey]{Data: views})
	}
	e.table("KID\tALGORITHM\tCREATED\tRETIRED\tSTATUS", rows)
	return nil
}

// withKeyring runs f on the keyring of the configured store, which it opens
// with the master key, and closes the store. Unless generate is set, a store
// without keys is left as it is (no master key or signing key is created)
// and f gets a nil keyring.
// openStore loads the configuration, makes the logger and opens the store,
// for commands that also need the master key. The caller closes the store.
func (e *env) openStore(ctx context.Context) (config.Config, *slog.Logger, store.Store, error) {
	cfg, err := e.load("")
	if err != nil {
		return cfg, nil, nil, err
	}
	log, err := logging.New(e.errOut, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return cfg, nil, nil, err
	}
	st, err := server.Open(ctx, cfg, clock.System{})
	return cfg, log, st, err
}

func (e *env) withKeyring(generate bool, f func(ctx context.Context, k *tokens.Keyring) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, log, st, err := e.openStore(ctx)
		if err != nil {
			return err
		}
		clk := clock.System{}
		err = func() error {
			if !generate && !hasKeys(ctx, st, tokens.Algorithm) {
				return f(ctx, nil)
			}
			box, err := server.LoadMasterKey(cfg, log)
			if err != nil {
				return err
			}
			k, err := tokens.LoadKeyring(ctx, st, box, clk)
			if err != nil {
				return err
			}
			return f(ctx, k)
		}()
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		return err
	}
}
