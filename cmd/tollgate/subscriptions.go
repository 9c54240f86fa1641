package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// subscriptionView is a wallet subscription as `subscription list --json`
// prints it.
type subscriptionView struct {
	Wallet         string    `json:"wallet"`
	OrganizationID string    `json:"organization_id"`
	Plan           string    `json:"plan"`
	Status         string    `json:"status"` // "active" or "expired"
	StartedAt      time.Time `json:"started_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	CreatedAt      time.Time `json:"created_at"`
}

func subscriptionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "subscription", Short: "Inspect wallet subscriptions bought with x402 payments"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List wallet subscriptions, oldest first",
		Args:  cobra.NoArgs,
		RunE: e.withServices(func(ctx context.Context, s *services) error {
			subs, err := s.store.ListSubscriptions(ctx)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			views := make([]subscriptionView, 0, len(subs))
			rows := make([][]string, 0, len(subs))
			for _, sub := range subs {
				v := subscriptionView{
					Wallet: sub.Wallet, OrganizationID: sub.OrgID, Plan: sub.Plan, Status: "expired",
					StartedAt: sub.StartedAt, ExpiresAt: sub.ExpiresAt, CreatedAt: sub.CreatedAt,
				}
				if sub.Active(now) {
					v.Status = "active"
				}
				views = append(views, v)
				rows = append(rows, []string{v.Wallet, v.OrganizationID, v.Plan, v.Status, when(&v.ExpiresAt)})
			}
			if e.json {
				return e.printJSON(struct {
					Data []subscriptionView `json:"data"`
				}{views})
			}
			e.table("WALLET\tORGANIZATION\tPLAN\tSTATUS\tEXPIRES", rows)
			return nil
		}),
	})
	addJSONFlag(e, cmd)
	return cmd
}
