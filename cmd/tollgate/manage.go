package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/counters/memory"
	redisctr "github.com/tollgate/tollgate/internal/counters/redis"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// services are what management commands work with: the store and the
// services on top of it, without a server.
type services struct {
	cfg      config.Config
	store    store.Store
	accounts *accounts.Service
	keys     *credentials.Service
	clock    clock.Clock
}

// open loads the configuration and opens its store. The caller closes it.
func (e *env) open(ctx context.Context) (*services, error) {
	cfg, err := e.load("")
	if err != nil {
		return nil, err
	}
	clk := clock.System{}
	st, err := server.Open(ctx, cfg, clk)
	if err != nil {
		return nil, err
	}
	// Events of what the CLI does go to the webhook outbox, for the
	// server's dispatcher to deliver.
	outbox, err := webhooks.New(webhooks.Options{Store: st, Clock: clk})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	emit := func(ctx context.Context, orgID, eventType string, data any) {
		if _, err := outbox.Emit(ctx, orgID, eventType, data); err != nil {
			fmt.Fprintf(e.errOut, "tollgate: warning: the %s webhook event was not recorded: %v\n", eventType, err)
		}
	}
	return &services{
		cfg:   cfg,
		store: st,
		clock: clk,
		accounts: accounts.New(st, accounts.Options{
			Clock: clk, Hasher: server.NewHasher(), Counters: memory.New(clk), Login: cfg.Auth.Login, Events: emit,
			Broadcast: func(msg string) { e.broadcast(cfg, msg) },
		}),
		keys: credentials.New(st, credentials.Options{Clock: clk, Events: emit}),
	}, nil
}

// withServices runs f on freshly opened services and closes them.
func (e *env) withServices(f func(ctx context.Context, s *services) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		s, err := e.open(cmd.Context())
		if err != nil {
			return err
		}
		err = f(cmd.Context(), s)
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

var cliActor = store.Actor{Type: store.ActorCLI}

// broadcast tells the running nodes of a cluster (counters.type redis) of a
// change through their invalidation bus, so that they apply it at once. A
// node of the all-in-one deployment has no bus the CLI can reach: it applies
// the change within its cache TTLs.
func (e *env) broadcast(cfg config.Config, msg string) {
	if cfg.Counters.Type != "redis" {
		fmt.Fprintln(e.errOut, "tollgate: note: running nodes apply this within their cache TTL (auth.apikey_cache_ttl, auth.token_cache_ttl); the admin API applies it at once")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := cfg.Counters.Redis
	bus, err := redisctr.Open(ctx, r.URL, redisctr.WithPrefix(r.Prefix), redisctr.WithCluster(r.Cluster),
		redisctr.WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil {
		err = bus.Publish(ctx, msg)
		_ = bus.Close()
	}
	if err != nil {
		fmt.Fprintf(e.errOut, "tollgate: warning: running nodes were not told (%v); they apply the change within their cache TTL\n", err)
	}
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) table(header string, rows [][]string) {
	tw := tabwriter.NewWriter(e.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// --- user ---

func userCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (activate registrations, disable, passwords)"}
	var status string
	list := &cobra.Command{
		Use:   "list",
		Short: "List users, e.g. those waiting for activation: --status pending",
		Args:  cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			users, err := s.accounts.ListUsers(ctx, store.UserStatus(status))
			if err != nil {
				return err
			}
			views := make([]controlapi.User, 0, len(users))
			rows := make([][]string, 0, len(users))
			for _, u := range users {
				v := controlapi.UserView(u)
				views = append(views, v)
				rows = append(rows, []string{v.ID, v.Email, v.OrgID, v.Role, v.Status, when(&v.CreatedAt)})
			}
			if e.json {
				return e.printJSON(controlapi.List[controlapi.User]{Data: views})
			}
			e.table("ID\tEMAIL\tORGANIZATION\tROLE\tSTATUS\tCREATED", rows)
			return nil
		}),
	}
	list.Flags().StringVar(&status, "status", "", "only users of this status: pending, active or disabled")
	cmd.AddCommand(list,
		e.statusCmd("activate", "Activate a registered (pending) user so they can log in", store.UserActive),
		e.statusCmd("disable", "Disable a user and end their sessions", store.UserDisabled),
		e.setPasswordCmd(), e.createUserCmd())
	addJSONFlag(e, cmd)
	return cmd
}

func addJSONFlag(e *env, cmd *cobra.Command) {
	cmd.PersistentFlags().BoolVar(&e.json, "json", false, "print JSON")
}

func (e *env) statusCmd(name, short string, status store.UserStatus) *cobra.Command {
	return &cobra.Command{
		Use:   name + " EMAIL|USER_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				u, err := s.accounts.SetStatus(ctx, args[0], status, cliActor)
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(controlapi.UserView(u))
				}
				fmt.Fprintf(e.out, "user %s (%s) is now %s\n", u.Email, u.ID, u.Status)
				return nil
			})(cmd, args)
		},
	}
}

func (e *env) setPasswordCmd() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "set-password EMAIL|USER_ID",
		Short: "Set a user's password (generated unless --password-stdin) and revoke their refresh tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, generated := server.RandomSecret(12), true
			if fromStdin {
				line, err := readLine(cmd.InOrStdin())
				if err != nil {
					return err
				}
				pw, generated = line, false
			}
			return e.withServices(func(ctx context.Context, s *services) error {
				u, err := s.accounts.SetPassword(ctx, args[0], pw, cliActor)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "password of %s changed; their refresh tokens were revoked\n", u.Email)
				if generated {
					fmt.Fprintf(e.out, "new password (shown once): %s\n", pw)
				}
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (e *env) createUserCmd() *cobra.Command {
	var orgName string
	cmd := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create an active user with a new organization (password generated, shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				if orgName == "" {
					orgName = args[0]
				}
				pw := server.RandomSecret(12)
				org, u, err := s.accounts.CreateActiveAccount(ctx, orgName, args[0], pw, cliActor)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "created user %s (%s) in organization %s (slug %s)\npassword (shown once): %s\n",
					u.Email, u.ID, org.ID, org.Slug, pw)
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&orgName, "org-name", "", "name of the new organization (default: the e-mail address)")
	return cmd
}

// --- org ---

func orgCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "org", Short: "Inspect organizations and assign their plans"}
	cmd.AddCommand(&cobra.Command{
		Use:   "set-plan ORG PLAN",
		Short: "Assign a configured plan to an organization (ID or slug)",
		Long: `Assign one of the plans of the configuration to an organization. Running
servers apply it within their plan cache TTL (30 s). The quota already used
in the current period is kept.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				plan := args[1]
				if !slices.ContainsFunc(s.cfg.Plans, func(p config.Plan) bool { return p.Name == plan }) {
					return fmt.Errorf("no plan %q in the configuration", plan)
				}
				org, err := s.accounts.FindOrganization(ctx, args[0])
				if err != nil {
					return err
				}
				org, err = s.store.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
					o.Plan, o.UpdatedAt = plan, s.clock.Now()
					return o, nil
				}, cliActor.Entry(org.ID, "org.set_plan", "organization", org.ID, map[string]string{"plan": plan}))
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(controlapi.OrganizationView(org))
				}
				fmt.Fprintf(e.out, "organization %s (%s) is now on plan %s\n", org.Slug, org.ID, org.Plan)
				return nil
			})(cmd, args)
		},
	})
	var reason string
	disable := &cobra.Command{
		Use:   "disable ORG --reason TEXT",
		Short: "Disable an organization: its keys, tokens, wallets and logins stop at once",
		Long: `Disable an organization (ID or slug). Its API keys, its apps' access tokens
(and new ones), its wallet subscriptions and its users' logins and dashboard
sessions are refused with 403 FORBIDDEN, reason organization_disabled, and
its open WebSocket sessions are closed. Nothing is deleted: "tollgate org
enable" restores everything. A cluster's nodes (counters.type redis) apply it
at once; a running all-in-one node within its cache TTL (the admin API
applies it at once there too).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				return e.setOrgDisabled(ctx, s, args[0], true, reason)
			})(cmd, args)
		},
	}
	disable.Flags().StringVar(&reason, "reason", "", "why, for the audit log (required)")
	_ = disable.MarkFlagRequired("reason")
	cmd.AddCommand(disable, &cobra.Command{
		Use:   "enable ORG",
		Short: "Enable a disabled organization again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				return e.setOrgDisabled(ctx, s, args[0], false, "")
			})(cmd, args)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			orgs, err := s.store.ListOrganizations(ctx)
			if err != nil {
				return err
			}
			views := make([]controlapi.Organization, 0, len(orgs))
			rows := make([][]string, 0, len(orgs))
			for _, o := range orgs {
				v := controlapi.OrganizationView(o)
				views = append(views, v)
				rows = append(rows, []string{v.ID, v.Slug, v.Name, v.Plan, v.Status, when(&v.CreatedAt)})
			}
			if e.json {
				return e.printJSON(controlapi.List[controlapi.Organization]{Data: views})
			}
			e.table("ID\tSLUG\tNAME\tPLAN\tSTATUS\tCREATED", rows)
			return nil
		}),
	})
	addJSONFlag(e, cmd)
	return cmd
}

func (e *env) setOrgDisabled(ctx context.Context, s *services, ref string, disable bool, reason string) error {
	org, err := s.accounts.SetOrgDisabled(ctx, ref, disable, reason, cliActor)
	if err != nil {
		return err
	}
	v := controlapi.OrganizationView(org)
	if e.json {
		return e.printJSON(v)
	}
	fmt.Fprintf(e.out, "organization %s (%s) is now %s\n", org.Slug, org.ID, v.Status)
	return nil
}

// --- apikey ---

func apikeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Create, list and revoke an organization's API keys"}
	var org string
	cmd.PersistentFlags().StringVar(&org, "org", "", "organization ID or slug (required)")

	var in struct {
		name, app, expiresIn, expiresAt, allow string
		scopes                                 []string
	}
	create := &cobra.Command{
		Use:   "create --org ORG --name NAME",
		Short: "Create an API key; the key is printed once",
		Args:  cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			o, err := s.accounts.FindOrganization(ctx, org)
			if err != nil {
				return err
			}
			allow, err := ipallow.ParseString(in.allow)
			if err != nil {
				return fmt.Errorf("--ip-allowlist: %w", err)
			}
			expires, err := parseExpiry(in.expiresIn, in.expiresAt, s.clock.Now())
			if err != nil {
				return err
			}
			created, err := s.keys.Create(ctx, o.ID, credentials.CreateInput{
				Name: in.name, AppID: in.app, ExpiresAt: expires, Scopes: in.scopes, IPAllowlist: allow,
			}, cliActor)
			if err != nil {
				return err
			}
			v := controlapi.CreatedAPIKey{APIKey: controlapi.APIKeyView(created.Key, s.clock.Now()), Key: created.Secret, Warning: controlapi.ShownOnce}
			if e.json {
				return e.printJSON(v)
			}
			fmt.Fprintf(e.out, "%s\n\n  %s\n\nid %s, prefix %s, organization %s, expires %s\n",
				controlapi.ShownOnce, created.Secret, v.ID, v.Prefix, o.Slug, when(v.ExpiresAt))
			return nil
		}),
	}
	f := create.Flags()
	f.StringVar(&in.name, "name", "", "a name to recognize the key by (required)")
	f.StringSliceVar(&in.scopes, "scopes", nil, "scopes, comma-separated (e.g. kyt.read,webhook.read)")
	f.StringVar(&in.allow, "ip-allowlist", "", `client IPs and CIDR ranges allowed, comma-separated (e.g. "203.0.113.50, 2001:db8::/32")`)
	f.StringVar(&in.expiresIn, "expires-in", "", "lifetime such as 90d or 720h (default: never expires)")
	f.StringVar(&in.expiresAt, "expires-at", "", "expiry as an RFC 3339 time (default: never expires)")
	f.StringVar(&in.app, "app", "", "tie the key to one of the organization's apps (app ID)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List an organization's API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			o, err := s.accounts.FindOrganization(ctx, org)
			if err != nil {
				return err
			}
			keys, err := s.keys.List(ctx, o.ID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			views := make([]controlapi.APIKey, 0, len(keys))
			rows := make([][]string, 0, len(keys))
			for _, k := range keys {
				v := controlapi.APIKeyView(k, now)
				views = append(views, v)
				rows = append(rows, []string{v.ID, v.Prefix, v.Name, v.Status, when(&v.CreatedAt), when(v.LastUsedAt), when(v.ExpiresAt)})
			}
			if e.json {
				return e.printJSON(controlapi.List[controlapi.APIKey]{Data: views})
			}
			e.table("ID\tPREFIX\tNAME\tSTATUS\tCREATED\tLAST USED\tEXPIRES", rows)
			return nil
		}),
	}

	revoke := &cobra.Command{
		Use:   "revoke --org ORG KEY_ID",
		Short: "Revoke an API key",
		Long: `Revoke an API key. A running node sees the revocation within auth.apikey_cache_ttl
(30 s by default); revoking through the API or the admin API takes effect at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withServices(func(ctx context.Context, s *services) error {
				o, err := s.accounts.FindOrganization(ctx, org)
				if err != nil {
					return err
				}
				k, err := s.keys.Revoke(ctx, o.ID, args[0], cliActor)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "revoked %s (%s) at %s\n", k.ID, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
				return nil
			})(cmd, args)
		},
	}
	var clearPlan bool
	setPlan := &cobra.Command{
		Use:   "set-plan --org ORG KEY_ID PLAN | --clear KEY_ID",
		Short: "Give an API key a plan of its own, overriding its organization's",
		Long: `Give an API key a plan of the configuration, overriding its organization's
plan: the key's requests then have a rate and a quota of their own and no
longer count against the organization's. --clear returns the key to the
organization's plan. Running nodes apply it within auth.apikey_cache_ttl
(30 s by default).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan := ""
			switch {
			case clearPlan && len(args) == 1:
			case !clearPlan && len(args) == 2:
				plan = args[1]
			default:
				return errors.New("give KEY_ID and PLAN, or --clear and KEY_ID")
			}
			return e.withServices(func(ctx context.Context, s *services) error {
				if plan != "" && !slices.ContainsFunc(s.cfg.Plans, func(p config.Plan) bool { return p.Name == plan }) {
					return fmt.Errorf("no plan %q in the configuration", plan)
				}
				o, err := s.accounts.FindOrganization(ctx, org)
				if err != nil {
					return err
				}
				k, err := s.store.GetAPIKey(ctx, args[0])
				if err != nil || k.OrgID != o.ID {
					return fmt.Errorf("organization %s has no API key %s", o.Slug, args[0])
				}
				k, err = s.store.UpdateAPIKey(ctx, k.ID, func(k store.APIKey) (store.APIKey, error) {
					k.Plan, k.UpdatedAt = plan, s.clock.Now()
					return k, nil
				}, cliActor.Entry(o.ID, "apikey.set_plan", "apikey", k.ID, map[string]string{"plan": plan}))
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(controlapi.APIKeyView(k, s.clock.Now()))
				}
				if plan == "" {
					fmt.Fprintf(e.out, "API key %s (%s) is back on its organization's plan\n", k.ID, k.Name)
				} else {
					fmt.Fprintf(e.out, "API key %s (%s) is now on plan %s\n", k.ID, k.Name, plan)
				}
				return nil
			})(cmd, args)
		},
	}
	setPlan.Flags().BoolVar(&clearPlan, "clear", false, "return the key to its organization's plan")

	for _, c := range []*cobra.Command{create, list, revoke, setPlan} {
		_ = c.MarkFlagRequired("org")
	}
	cmd.AddCommand(create, list, revoke, setPlan)
	addJSONFlag(e, cmd)
	return cmd
}

// parseExpiry reads --expires-in (Go duration, or whole days as "90d") or
// --expires-at (RFC 3339); neither means never.
func parseExpiry(in, at string, now time.Time) (time.Time, error) {
	switch {
	case in != "" && at != "":
		return time.Time{}, errors.New("give --expires-in or --expires-at, not both")
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, fmt.Errorf("--expires-at: %w", err)
		}
		return t, nil
	case strings.HasSuffix(in, "d"):
		days, err := strconv.Atoi(strings.TrimSuffix(in, "d"))
		if err != nil || days <= 0 {
			return time.Time{}, fmt.Errorf("--expires-in %q: want a positive number of days such as 90d", in)
		}
		return now.AddDate(0, 0, days), nil
	case in != "":
		d, err := time.ParseDuration(in)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("--expires-in %q: want a positive duration such as 720h or 90d", in)
		}
		return now.Add(d), nil
	}
	return time.Time{}, nil
}

// --- config ---

func configCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	var withStore bool
	check := &cobra.Command{
		Use:   "check [--store]",
		Short: "Validate the configuration (file plus environment) and report every problem",
		Long: `Validate the configuration (file plus environment) and report every problem,
and what is accepted but deprecated.

In cluster mode (storage.type postgres) every node must have the same
server.public_url, and so the same token issuer and audience: --store also
opens the store (applying its migrations, as every node does at start) and
compares this configuration's auth.issuer and auth.audience with the ones the
cluster's first node recorded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.load("")
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(e.errOut, "tollgate: warning: %s\n", w)
			}
			if withStore {
				if err := e.compareCluster(cmd.Context(), cfg); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.out, "configuration is valid: %d routes, %d plans, storage %s, listening on %s\n",
				len(cfg.Routes), len(cfg.Plans), cfg.Storage.Type, cfg.Server.Listen)
			return nil
		},
	}
	check.Flags().BoolVar(&withStore, "store", false, "also compare the token issuer and audience with the cluster's, recorded in the store")
	record := &cobra.Command{
		Use:   "record-issuer",
		Short: "Make this configuration's token issuer and audience the cluster's",
		Long: `Record this configuration's auth.issuer and auth.audience (server.public_url,
unless they are set) in the store as the cluster's, replacing the ones its
first node recorded. Nodes refuse to start with others: after moving a
cluster to a new public URL, run this once, then restart every node with the
new configuration. Tokens issued under the former issuer are refused by the
nodes that run with the new one.`,
		Args: cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			if !s.cfg.ClusterMode() {
				return errors.New("record-issuer is for cluster mode (storage.type postgres): a single node checks nothing")
			}
			if err := server.RecordClusterSettings(ctx, s.store, s.cfg, cliActor); err != nil {
				return err
			}
			for _, st := range server.ClusterSettings(s.cfg) {
				fmt.Fprintf(e.out, "%s recorded for the cluster: %s\n", st.Name, st.Value)
			}
			return nil
		}),
	}
	cmd.AddCommand(check, record)
	return cmd
}

// compareCluster compares cfg's token issuer and audience with the ones
// recorded in its store (cluster mode only).
func (e *env) compareCluster(ctx context.Context, cfg config.Config) error {
	if !cfg.ClusterMode() {
		fmt.Fprintln(e.errOut, "tollgate: note: --store compares the settings of cluster mode (storage.type postgres); nothing to compare")
		return nil
	}
	st, err := server.Open(ctx, cfg, clock.System{})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	unrecorded, err := server.CompareClusterSettings(ctx, st, cfg)
	if err != nil {
		return err
	}
	for _, name := range unrecorded {
		fmt.Fprintf(e.errOut, "tollgate: note: %s is not recorded in the store yet: the first node to start records its own\n", name)
	}
	return nil
}
