// Command tollgate is the Tollgate API gateway: `tollgate serve` runs a node;
// most other commands manage accounts, credentials and keys in its store, and
// `tollgate sign` signs a request by hand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr, os.Environ()).ExecuteContext(ctx)
	stop()
	if err != nil {
		var apiErr *apierror.Error
		if errors.As(err, &apiErr) {
			fmt.Fprintf(os.Stderr, "tollgate: %s\n", apiErr.Message)
		} else {
			fmt.Fprintf(os.Stderr, "tollgate: %v\n", err)
		}
		os.Exit(1)
	}
}

// env carries what commands share: where to write and the environment.
type env struct {
	out, errOut io.Writer
	environ     []string
	configPath  string
	dev         bool
	json        bool
}

func newRoot(out, errOut io.Writer, environ []string) *cobra.Command {
	e := &env{out: out, errOut: errOut, environ: environ}
	root := &cobra.Command{
		Use:   "tollgate",
		Short: "Tollgate: an API gateway with built-in auth and billing",
		Long: `Tollgate authenticates, authorizes, limits and meters every request to your API
in one hop, and serves the accounts, keys and tokens your customers need.

  tollgate serve --dev             run locally with no configuration at all
  tollgate serve -c tollgate.yaml  run with a configuration file

Every setting can be overridden by an environment variable: TOLLGATE_ plus the
setting's YAML path in upper case, e.g. TOLLGATE_SERVER_LISTEN=0.0.0.0:8443.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVarP(&e.configPath, "config", "c", "", "configuration file (YAML)")
	root.PersistentFlags().BoolVar(&e.dev, "dev", false, "use the development configuration (data in "+config.DevDataDir+")")
	root.AddCommand(serveCmd(e), userCmd(e), orgCmd(e), apikeyCmd(e), subscriptionCmd(e), configCmd(e))
	root.AddCommand(keysCmd(e), secretsCmd(e))
	root.AddCommand(signCmd(e))
	root.AddCommand(verifyCmd(e), webhookCmd(e))
	return root
}

// load returns the configuration named by --config or --dev. demoURL is the
// development upstream (serve --dev); other commands pass "".
func (e *env) load(demoURL string) (config.Config, error) {
	switch {
	case e.dev && e.configPath != "":
		return config.Config{}, errors.New("give either --dev or --config, not both")
	case e.dev:
		if demoURL == "" {
			demoURL = "http://127.0.0.1:1" // not used by commands other than serve
		}
		return config.Dev(config.DevDataDir, demoURL, e.environ)
	case e.configPath != "":
		return config.Load(e.configPath, e.environ)
	default:
		return config.Config{}, errors.New("no configuration: give --config FILE, or --dev for local development")
	}
}
