// Command demo is `make demo`: it starts a throwaway PostgreSQL cluster,
// loads the sample shop in testdata/demo, runs the demo workflow into a twin
// database with nopii's own CLI, and shows a before/after sample of a
// redacted table. With -keep it leaves the cluster running for a look around.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/cmd"
	"github.com/nopii/nopii/internal/pgtest"
)

// demoKey is public: it is only ever used on the demo's throwaway data.
const demoKey = "demo-hmac-key-for-the-sample-data-only-0123456789"

func main() {
	keep := flag.Bool("keep", false, "leave the cluster running until Ctrl-C and print its DSNs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// run is the demo, writing its story to stdout and nopii's log to stderr.
func run(ctx context.Context, keep bool, stdout, stderr io.Writer) error {
	fmt.Fprintln(stdout, "== starting a throwaway PostgreSQL cluster")
	cl, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		return err
	}
	defer cl.Stop()
	prod, err := cl.CreateDatabase(ctx, "prod")
	if err != nil {
		return err
	}
	twin, err := cl.CreateDatabase(ctx, "twin")
	if err != nil {
		return err
	}
	schema, err := os.ReadFile(filepath.Join(root(), "testdata", "demo", "schema.sql"))
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, prod)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	fmt.Fprintln(stdout, "== loading the sample shop into prod (testdata/demo/schema.sql)")
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		return fmt.Errorf("load sample data: %w", err)
	}
	os.Setenv("PROD_DATABASE_URL", prod)
	os.Setenv("TWIN_DATABASE_URL", twin)
	os.Setenv("NOPII_HMAC_KEY", demoKey)
	cfg := filepath.Join(root(), "testdata", "demo", "nopii.yaml")
	fmt.Fprintf(stdout, "== nopii run --config %s\n", cfg)
	// Warnings only, as text: the run's report says what the INFO lines
	// would (they are for the agent's logs).
	code := cmd.Execute(ctx, []string{"run", "--config", cfg, "--log-level", "warn", "--log-format", "text"}, stdout, stderr)
	if code != 0 {
		return fmt.Errorf("nopii run exited %d", code)
	}
	tconn, err := pgx.Connect(ctx, twin)
	if err != nil {
		return err
	}
	defer tconn.Close(context.Background())
	// ORDER BY c.customer_id, the bigint: the output column of that name
	// is text, and would sort 1, 10, 100, 1000.
	const q = `SELECT c.customer_id::text, c.email::text, c.first_name, c.last_name, coalesce(c.phone, 'NULL'), c.ssn, c.date_of_birth::text, c.address->>'street'
	           FROM public.customer c ORDER BY c.customer_id LIMIT 5`
	fmt.Fprintln(stdout, "\n== before: prod public.customer")
	if err := show(ctx, stdout, conn, q); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n== after: twin public.customer (same query)")
	if err := show(ctx, stdout, tconn, q); err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(stdout, "\nprod: psql '%s'\ntwin: psql '%s'\nCtrl-C to stop and remove the cluster.\n", prod, twin)
		<-ctx.Done()
	}
	return nil
}

func show(ctx context.Context, w io.Writer, conn *pgx.Conn, q string) error {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "customer_id\temail\tfirst_name\tlast_name\tphone\tssn\tdate_of_birth\tstreet")
	for rows.Next() {
		var v [8]string
		if err := rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
	}
	tw.Flush()
	return rows.Err()
}
