package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/source/postgres"
)

func newCDCCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "cdc",
		Short: "Manage the replication slots and publications of mode cdc",
		Long: `Tables in mode cdc stream their changes through a publication and a logical
replication slot per workflow input, both named nopii_<workflow>_<input>
(lower case, [a-z0-9_], at most 63 bytes). nopii creates them on the first run.
A slot keeps the source's WAL until nopii confirms it: drop the slot of a
workflow you stop running, or the source's disk fills.`,
	}
	c.AddCommand(newCDCDropCmd(g))
	return c
}

func newCDCDropCmd(g *globals) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "drop [WORKFLOW…] --config FILE",
		Short: "Drop the replication slots and publications of workflows",
		Long: `Drop removes, for every input of the workflows (all of them by default), the
replication slot and the publication named nopii_<workflow>_<input>, those that
exist, and prints what it dropped. The slot must not be in use (stop the agent
first). The next run of a cdc table then starts again with a full copy.`,
		Example: "  nopii cdc drop ml-experimentation --config nopii.yaml",
		RunE: func(c *cobra.Command, args []string) error {
			_, wfs, log, err := g.setup(cfgPath, "text", args)
			if err != nil {
				return err
			}
			for _, wf := range wfs {
				for i := range wf.Inputs {
					in := &wf.Inputs[i]
					name := postgres.ReplicationName(wf.Name, in.Name)
					dropped, err := postgres.DropSlot(c.Context(), in.DSN.Reveal(), name, log)
					if err != nil {
						return fmt.Errorf("workflow %s, input %s: %w", wf.Name, in.Name, err)
					}
					what := "nothing to drop (" + name + ")"
					if len(dropped) > 0 {
						what = "dropped " + strings.Join(dropped, " and ")
					}
					fmt.Fprintf(g.stdout, "%s/%s: %s\n", wf.Name, in.Name, what)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	return c
}
