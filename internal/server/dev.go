package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/store"
)

// DevEmail is the account `tollgate serve --dev` creates.
const DevEmail = "demo@tollgate.local"

// RandomSecret returns n random bytes in URL-safe base64, for generated
// passwords and tokens.
func RandomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DevBootstrap prepares a development deployment and tells the developer how
// to use it. On first start it creates an active demo account and a first API
// key, whose secrets are printed this once; on later starts it says how to get
// new ones.
func (s *Server) DevBootstrap(ctx context.Context, out io.Writer, adminToken string) error {
	base := "http://" + s.Addr()
	dash := s.DashboardURL()
	if dash == "" {
		dash = "off (dashboard.listen is empty)"
	}
	fmt.Fprintf(out, `
==============================================================================
  TOLLGATE DEVELOPMENT MODE
  WARNING: plain HTTP without TLS, generated secrets, data in %s.
  For local development only: never expose these listeners to a network.
==============================================================================
  Gateway (demo upstream):  %s/v1/hello
  Dashboard:                %s  (its own origin)
  Control-plane API:        %s/api/v1/
  Admin API:                http://%s/admin/v1/  (token below, valid until restart)
  Admin token:              %s
`, s.cfg.Storage.SQLite.Path, base, dash, base, s.AdminAddr(), adminToken)

	_, err := s.store.GetUserByEmail(ctx, DevEmail)
	if err == nil {
		fmt.Fprintf(out, `
  Demo account: %s (its password was shown at first start).
    New password:  tollgate user set-password %s --dev
    New API key:   tollgate apikey create --dev --org demo --name my-key
==============================================================================

`, DevEmail, DevEmail)
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pw := RandomSecret(12)
	system := store.Actor{Type: store.ActorSystem}
	org, _, err := s.accounts.CreateActiveAccount(ctx, "Demo", DevEmail, pw, system)
	if err != nil {
		return fmt.Errorf("dev bootstrap: %w", err)
	}
	created, err := s.keys.Create(ctx, org.ID, credentials.CreateInput{Name: "dev key"}, system)
	if err != nil {
		var apiErr *apierror.Error
		if errors.As(err, &apiErr) {
			return fmt.Errorf("dev bootstrap: %s", apiErr.Message)
		}
		return err
	}
	fmt.Fprintf(out, `
  Created a demo account and a first API key. They are shown ONLY NOW:
    e-mail:    %s
    password:  %s
    API key:   %s

  Try it:
    curl -s %s/v1/hello -H 'X-API-KEY: %s'
    curl -s %s/api/v1/auth/email/login -H 'Content-Type: application/json' \
      -d '{"email":"%s","password":"%s"}'
==============================================================================

`, DevEmail, pw, created.Secret, base, created.Secret, base, DevEmail, pw)
	return nil
}
