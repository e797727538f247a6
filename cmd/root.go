package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/rulesets"
)

// version is set at build time: -ldflags "-X github.com/nopii/nopii/cmd.version=…".
var version = "dev"

// Version returns the build's version.
func Version() string { return version }

// exitError carries an exit status for a failure that was already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a mistake in the command line; the hint says what to do.
type usageError struct {
	err  error
	hint string
}

func (e usageError) Error() string { return e.err.Error() }

// Execute runs the command line and returns the process exit status.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "Interrupted: %v\n", err)
		return 130
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintf(stderr, "Hint: %s\n", ue.hint)
	}
	if ctx.Err() != nil {
		return 130
	}
	return 1
}

// globals are the persistent flags, held per tree (not in package state).
type globals struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	cpuProfile     string
}

// NewRoot builds the command tree writing to stdout and stderr.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "nopii",
		Short: "Replicate PostgreSQL without the PII",
		Long: `nopii copies tables from production PostgreSQL databases into a digital twin,
redacting personal data column by column on the way (deterministically, so joins
still work), with a source_primary_key column on every table.

Start with:  nopii validate --config nopii.yaml --connect
Then:        nopii run --config nopii.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// --version prints what the version command prints.
	root.SetVersionTemplate("nopii {{.Version}}\n")
	root.Flags().Bool("version", false, "print nopii's version (as nopii version does)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (default info; warn on a terminal while progress bars show)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "", "text or json (default text on a terminal, json otherwise)")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for bench/)")
	root.PersistentFlags().MarkHidden("cpuprofile")
	var prof *os.File
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return err
		}
		prof = f
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}

	root.AddCommand(newRunCmd(g), newPlanCmd(g), newValidateCmd(g), newAgentCmd(g), newScanCmd(g), newVerifyCmd(g), newSubjectCmd(g), newCDCCmd(g), newDashboardCmd(g), newVersionCmd(g))
	return root
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// logger builds the slog logger: text on a terminal, JSON otherwise.
func (g *globals) logger(quietOnTTY bool) (*slog.Logger, error) {
	tty := isTerminal(g.stderr)
	level := slog.LevelInfo
	if quietOnTTY && tty {
		level = slog.LevelWarn
	}
	if g.logLevel != "" {
		if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
			return nil, usageError{fmt.Errorf("--log-level %q: %w", g.logLevel, err), "use debug, info, warn or error"}
		}
	}
	format := g.logFormat
	if format == "" {
		format = "json"
		if tty {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		// Durations as people and log queries read them ("500ms", "30s"),
		// as the text handler writes them, not in nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q", g.logFormat), "use text or json"}
}

// loadConfig reads and validates the workflow file, rule catalog included.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, usageError{errors.New("--config is required"), "point --config at your workflow file, e.g. --config nopii.yaml"}
	}
	return config.Load(path, config.Options{CheckRule: rulesets.Check, RuleNeedsKey: rulesets.NeedsKey})
}

// setup is what run and plan share: check --format, load and validate the
// file, pick the workflows, build the logger.
func (g *globals) setup(cfgPath, format string, args []string) (*config.Config, []*config.Workflow, *slog.Logger, error) {
	if format != "text" && format != "json" {
		return nil, nil, nil, usageError{fmt.Errorf("--format %q", format), "use text or json"}
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, nil, nil, err
	}
	wfs, err := pickWorkflows(cfg, args)
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := g.logger(true)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, wfs, log, nil
}

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// finish ends a command over workflows: with --format json it writes one
// JSON object, the one workflow's value itself or many(items) for several;
// the exit status is 1 when any failed.
func finish[T any](g *globals, format string, items []T, failed bool, many func([]T) any) error {
	if format == "json" && len(items) > 0 {
		var v any = items[0]
		if len(items) > 1 {
			v = many(items)
		}
		if err := writeJSON(g.stdout, v); err != nil {
			return err
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// pickWorkflows returns the named workflows, or all of them.
func pickWorkflows(cfg *config.Config, names []string) ([]*config.Workflow, error) {
	if len(names) == 0 {
		out := make([]*config.Workflow, len(cfg.Workflows))
		for i := range cfg.Workflows {
			out[i] = &cfg.Workflows[i]
		}
		return out, nil
	}
	var out []*config.Workflow
	for _, n := range names {
		wf := cfg.Workflow(n)
		if wf == nil {
			var all []string
			for _, w := range cfg.Workflows {
				all = append(all, w.Name)
			}
			return nil, usageError{fmt.Errorf("no workflow %q in %s", n, cfg.File), "workflows in the file: " + strings.Join(all, ", ")}
		}
		out = append(out, wf)
	}
	return out, nil
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print nopii's version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "nopii %s\n", version)
			return nil
		},
	}
}
