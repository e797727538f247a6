package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/pgconnect"
)

func newAgentCmd(g *globals) *cobra.Command {
	var cfgPath, listen string
	var grace, poll time.Duration
	c := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run workflows on their cron schedules until stopped",
		Long: `Agent is the long-running form of nopii (the Helm chart runs it): every
workflow with a schedule runs on it, in UTC (crontab lines and @every, @daily …),
one run per workflow at a time — a tick that finds the previous run still going
is skipped and logged.

The configuration file is re-read when it changes (a ConfigMap update): a valid
new file takes effect for the next runs, an invalid one is reported in the logs,
in /metrics (nopii_config_valid 0) and in heartbeats, and the previous
configuration stays in force.

With a dashboard section, the agent posts a heartbeat every heartbeat_interval
and a job report when each run starts and ends, through a bounded queue that a
dashboard outage cannot block. It serves /healthz, /readyz (configuration in
force, sources reachable) and /metrics on agent.listen, or on --listen, which
wins over the file (the Helm chart sets --listen :8080 so that probes reach it).

SIGTERM or Ctrl-C stops scheduling, lets running copies finish for --grace, then
cancels them (feeds keep their previous versions), and exits 0.`,
		Example: "  nopii agent --config /etc/nopii/nopii.yaml",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			// --listen applies to every version of the file, though only the
			// first one's address is served: the listener outlives reloads.
			load := func(path string) (*config.Config, error) {
				cfg, err := loadConfig(path)
				if err == nil && listen != "" {
					cfg.Agent.Listen = listen
				}
				return cfg, err
			}
			if _, err := load(cfgPath); err != nil {
				return err
			}
			log, err := g.logger(false)
			if err != nil {
				return err
			}
			d := &agent.Daemon{
				ConfigPath: cfgPath,
				Load:       load,
				NewRunner:  newRunner,
				CheckSource: func(ctx context.Context, in *config.Input) error {
					conn, err := pgconnect.Connect(ctx, in.DSN.Reveal(), pgconnect.Options{Attempts: 1, What: "source " + in.Name})
					if err != nil {
						return err
					}
					return conn.Close(ctx)
				},
				Version:   version,
				Logger:    log,
				Grace:     grace,
				PollEvery: poll,
			}
			return d.Run(c.Context())
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringVar(&listen, "listen", "", "serve /healthz, /readyz and /metrics on this host:port instead of the file's agent.listen (e.g. :8080 in a pod)")
	c.Flags().DurationVar(&grace, "grace", 30*time.Second, "how long SIGTERM lets running copies finish before cancelling them")
	c.Flags().DurationVar(&poll, "reload-every", 2*time.Second, "how often the configuration file is checked for changes")
	return c
}
