package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/dashboard"
	"github.com/nopii/nopii/internal/human"
)

// envAdminToken names the variable holding the dashboard's admin token.
const envAdminToken = "NOPII_DASHBOARD_ADMIN_TOKEN"

// envDashboardDSN is the fallback for --dsn, so that the DSN (and its
// password) need not appear on a command line.
const envDashboardDSN = "NOPII_DASHBOARD_DSN"

// dsnHelp is the help of every dashboard command's --dsn.
const dsnHelp = "PostgreSQL URL of the dashboard's database; prefer $" + envDashboardDSN + ", which keeps its password out of ps"

func newDashboardCmd(g *globals) *cobra.Command {
	var dsn, listen, hookFormat string
	var secureCookies bool
	var hookFlags []string
	c := &cobra.Command{
		Use:   "dashboard [--listen ADDR]",
		Short: "Serve the dashboard: agents' heartbeats, job reports and PII scans",
		Long: `The dashboard stores what agents post (heartbeats, job reports, scanner
findings) in PostgreSQL, schema nopii_dashboard (created and migrated at start),
and serves:

  /             Agents: healthy (✓), failing (!: a workflow's last run failed,
                or its configuration does not load) or silent (✗: no heartbeat
                for two intervals); CDC lag per workflow and input
  /jobs         runs per workflow, newest first, with their per-table report
  /jobs/ID      one run: its tables, and rows and seconds of the workflow's runs
  /scans        open scanner findings per agent (first and last seen), with
                the YAML rules to add; the scan history
  /unruled      columns runs copied without a rule (on_unclassified: warn)
  /alerts       failed runs, guard failures, silent agents, slots past their
                WAL warning, and their deliveries to the --webhook URLs
  /healthz      open; 200 when the database answers

  POST /api/v1/heartbeat, /api/v1/jobs, /api/v1/scans   agent token (Bearer)
  GET  /api/v1/agents, /api/v1/jobs[/ID], /api/v1/scans, /api/v1/findings,
       /api/v1/unruled, /api/v1/alerts                  admin token (Bearer)

The pages and the read API take the admin token from $NOPII_DASHBOARD_ADMIN_TOKEN,
as a Bearer header or through the login form at /login. Agents authenticate with
tokens made by 'nopii dashboard token create NAME'. The database's URL comes
from $NOPII_DASHBOARD_DSN (or --dsn, but a password on the command line is
visible to every user of the machine in ps). Serve behind a TLS-terminating
proxy and pass --secure-cookies. Stops gracefully on SIGINT/SIGTERM.`,
		Example: `  export NOPII_DASHBOARD_ADMIN_TOKEN=$(openssl rand -base64 32)
  export NOPII_DASHBOARD_DSN='postgres://nopii:…@db/nopii'
  nopii dashboard --listen :8090`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dsn, err := dashboardDSN(dsn)
			if err != nil {
				return err
			}
			admin := os.Getenv(envAdminToken)
			if len(admin) < 16 {
				return usageError{fmt.Errorf("$%s is unset or shorter than 16 characters", envAdminToken),
					"set it to a long random secret, e.g. export " + envAdminToken + "=$(openssl rand -base64 32)"}
			}
			log, err := g.logger(false)
			if err != nil {
				return err
			}
			ctx := c.Context()
			store, err := dashboard.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer store.Close()
			hooks, err := dashboardWebhooks(hookFlags, hookFormat)
			if err != nil {
				return err
			}
			for _, h := range hooks {
				log.Info("alerts go to a webhook", dashboard.LogKeyWebhook, h.String())
			}
			srv, err := dashboard.NewServer(store, dashboard.Options{AdminToken: admin, Logger: log, SecureCookies: secureCookies, Webhooks: hooks})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageError{fmt.Errorf("listen on %s: %w", listen, err), "pick a free address with --listen, e.g. --listen :8090"}
			}
			log.Info("dashboard listening", "addr", ln.Addr().String())
			return srv.Serve(ctx, ln)
		},
	}
	c.Flags().StringVar(&dsn, "dsn", "", dsnHelp)
	c.Flags().StringVar(&listen, "listen", ":8090", "address to serve on")
	c.Flags().BoolVar(&secureCookies, "secure-cookies", false, "mark cookies Secure even over plain HTTP (behind a TLS proxy)")
	c.Flags().StringArrayVar(&hookFlags, "webhook", nil, "post alerts to this URL, [json=|slack=]URL; repeatable (default $"+envDashboardWebhooks+", space-separated: keeps secret URLs out of ps)")
	c.Flags().StringVar(&hookFormat, "webhook-format", "json", "body of webhooks given without a format: json or slack ({\"text\": …})")
	c.AddCommand(newDashboardTokenCmd(g))
	return c
}

// envDashboardWebhooks is the fallback for --webhook: Slack's webhook URLs
// are secrets, better kept off the command line.
const envDashboardWebhooks = "NOPII_DASHBOARD_WEBHOOKS"

// dashboardWebhooks parses --webhook, else $NOPII_DASHBOARD_WEBHOOKS.
func dashboardWebhooks(flags []string, format string) ([]dashboard.Webhook, error) {
	if len(flags) == 0 {
		flags = strings.Fields(os.Getenv(envDashboardWebhooks))
	}
	var out []dashboard.Webhook
	for i, f := range flags {
		w, err := dashboard.ParseWebhook(f, dashboard.WebhookFormat(format))
		if err != nil {
			return nil, usageError{fmt.Errorf("webhook %d: %w", i+1, err), "pass --webhook https://… or --webhook slack=https://hooks.slack.com/…, or set $" + envDashboardWebhooks}
		}
		out = append(out, w)
	}
	return out, nil
}

// openStore opens the dashboard's database named by --dsn or
// NOPII_DASHBOARD_DSN.
func openStore(ctx context.Context, flag string) (*dashboard.Store, error) {
	dsn, err := dashboardDSN(flag)
	if err != nil {
		return nil, err
	}
	return dashboard.Open(ctx, dsn)
}

func dashboardDSN(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv(envDashboardDSN); env != "" {
		return env, nil
	}
	return "", usageError{errors.New("--dsn is required"), "set $" + envDashboardDSN + " to the dashboard's PostgreSQL URL (or pass --dsn, which ps shows to everyone)"}
}

func newDashboardTokenCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Create and revoke agent tokens",
		Long: `Agents authenticate to the dashboard with a bearer token bound to the agent's
name: a heartbeat, job report or scan posted with it must name that agent.
Only a SHA-256 of each token is stored.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	var dsn string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token for agent NAME and print it (on the last line)",
		Long: `Create prints a new token for the agent NAME on its last line. It is shown once:
put it in the agent's secret (dashboard.token: ${NOPII_AGENT_TOKEN}). An agent
may hold several tokens, to rotate them; revoke removes them all.`,
		Example: "  NOPII_DASHBOARD_DSN='postgres://nopii:…@db/nopii' nopii dashboard token create prod-eu-1 | tail -n1",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			store, err := openStore(c.Context(), dsn)
			if err != nil {
				return err
			}
			defer store.Close()
			tok, err := store.CreateToken(c.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Token for agent %s (shown once; store it as the agent's dashboard.token):\n%s\n", args[0], tok)
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke every token of agent NAME",
		Long:    `Revoke makes every token of the agent NAME invalid at once: its posts get 401.`,
		Example: "  NOPII_DASHBOARD_DSN='postgres://nopii:…@db/nopii' nopii dashboard token revoke prod-eu-1",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			store, err := openStore(c.Context(), dsn)
			if err != nil {
				return err
			}
			defer store.Close()
			n, err := store.RevokeTokens(c.Context(), args[0])
			if errors.Is(err, dashboard.ErrNotFound) {
				return usageError{err, "nothing to revoke: check the agent's name"}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Revoked %s of agent %s.\n", human.Count(int(n), "token"), args[0])
			return nil
		},
	}
	for _, sub := range []*cobra.Command{create, revoke} {
		sub.Flags().StringVar(&dsn, "dsn", "", dsnHelp)
	}
	c.AddCommand(create, revoke)
	return c
}
