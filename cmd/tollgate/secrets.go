package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/tokens"
)

func secretsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the master key that encrypts secrets at rest",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate-key",
		Short: "Print a new random master key (base64, 32 bytes)",
		Long: `Print a new random 32-byte master key, base64-encoded, for
TOLLGATE_SECRETS_MASTER_KEY or a secrets.master_key_file (mode 0600).
To rotate: make the new key the master key and list the old one in
secrets.previous_master_keys; values sealed under the old key keep opening.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			key, err := secretbox.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.out, key)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "reseal",
		Short: "Seal every stored secret again under the current master key",
		Long: `After a master-key rotation (the new key in secrets.master_key, the old one in
secrets.previous_master_keys), seal the token signing keys and the API keys'
HMAC signing secrets again under the new key. Then the old key can be
removed from previous_master_keys. Running servers need no restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, log, st, err := e.openStore(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = st.Close() }()
			box, err := server.LoadMasterKey(cfg, log)
			if err != nil {
				return err
			}
			keys, err := tokens.ResealKeys(ctx, st, box)
			if err != nil {
				return err
			}
			orgs, err := st.ListOrganizations(ctx)
			if err != nil {
				return err
			}
			ids := make([]string, 0, len(orgs))
			for _, o := range orgs {
				ids = append(ids, o.ID)
			}
			svc := credentials.New(st, credentials.Options{Sealer: box})
			secrets, err := svc.ResealSecrets(ctx, box, ids, cliActor)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "resealed %d token signing keys and %d API key signing secrets under the current master key\n", keys, secrets)
			return err
		},
	})
	return cmd
}
