package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/demo"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/logging"
	"github.com/tollgate/tollgate/internal/server"
)

func serveCmd(e *env) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Tollgate node",
		Long: `Run a Tollgate node: the gateway and the control-plane API on server.listen,
the admin API on admin.listen when set, and the dashboard on an origin of its own
(dashboard.listen or dashboard.host) when set.

With --dev and no file: SQLite under ./tollgate-data, plain HTTP on 127.0.0.1:8080,
the admin API on 127.0.0.1:8081, the dashboard on 127.0.0.1:8082, and a demo
upstream behind /v1/. A demo account and a first API key are created and printed
on first start.

--role splits a cluster's work (the role setting, TOLLGATE_ROLE):
  all      decide and proxy in-process (default)
  auth     the auth & billing service: control-plane API, the decision API on
           auth_service.listen (forward-auth for nginx, Traefik, Caddy) and
           Envoy ext_authz on auth_service.grpc_listen
  gateway  proxy only, asking the auth service at auth_service.url for each
           decision (one hop; no database of its own)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role != "" {
				e.environ = append(e.environ, "TOLLGATE_ROLE="+role)
			}
			return e.serve(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "all, auth or gateway (default: the role setting, all)")
	return cmd
}

func (e *env) serve(ctx context.Context) error {
	var demoSrv *demo.Server
	demoURL := ""
	if e.dev {
		var err error
		if demoSrv, err = demo.Start(); err != nil {
			return err
		}
		defer func() { _ = demoSrv.Close(context.Background()) }()
		demoURL = demoSrv.URL()
	}
	cfg, err := e.load(demoURL)
	if err != nil {
		return err
	}
	adminToken := ""
	if cfg.Dev && cfg.Admin.Token == "" && cfg.Admin.TokenSHA256 == "" {
		adminToken = server.RandomSecret(24)
		cfg.Admin.Token = adminToken
	}
	logOut := logging.NewWriter(os.Stderr, logging.FlushInterval)
	defer func() { _ = logOut.Close() }()
	log, err := logging.New(logOut, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration: " + w)
	}
	if cfg.Server.InsecureHTTP {
		log.Warn("INSECURE: serving plain HTTP without TLS (server.insecure_http); use this only for local development",
			"listen", cfg.Server.Listen)
	}
	opts := server.Options{Logger: log}
	if cfg.Log.Format == "json" {
		level, _ := logging.ParseLevel(cfg.Log.Level) // checked by logging.New
		opts.AccessLog = httpx.JSONAccessLog(logOut, level)
	}
	srv, err := server.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close()
		return err
	}
	if cfg.Dev && cfg.Role != server.RoleGateway {
		_ = logOut.Flush()
		if err := srv.DevBootstrap(ctx, e.out, adminToken); err != nil {
			log.Error("development bootstrap failed", "error", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down: draining requests", "grace", cfg.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
