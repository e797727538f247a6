package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/internal/s3test"
)

const testKey = "test-hmac-key-0123456789abcdef-0123456789"

// nopii runs the CLI in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Execute(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %.80q: %v", sql, err)
	}
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s *string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("query %.100q: %v", sql, err)
	}
	if s == nil {
		return "NULL"
	}
	return *s
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("query %.100q: %v", sql, err)
	}
	return n
}

// writeConfig writes a workflow file with ${PROD}/${TWIN} style variables
// already substituted by the caller.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nopii.yaml")
	if err := os.WriteFile(p, []byte(strings.TrimLeft(body, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// demoDatabases loads the demo shop into a fresh prod database and returns
// prod and an empty twin, with the variables of testdata/demo/nopii.yaml set.
func demoDatabases(t *testing.T) (prod, twin string) {
	t.Helper()
	prod, twin = pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	schema, err := os.ReadFile("../testdata/demo/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, mustConnect(t, prod), string(schema))
	t.Setenv("PROD_DATABASE_URL", prod)
	t.Setenv("TWIN_DATABASE_URL", twin)
	t.Setenv("NOPII_HMAC_KEY", testKey)
	return prod, twin
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oneInputConfig writes a workflow w with one input (prod), the given
// table entries, and one twin feed.
func oneInputConfig(t *testing.T, prodDSN, twinDSN, tables string) string {
	return writeConfig(t, oneInputYAML(prodDSN, twinDSN, tables))
}

// oneInputYAML is the file oneInputConfig writes.
func oneInputYAML(prodDSN, twinDSN, tables string) string {
	return workflowYAML("w", prodDSN, tables+"\n", `    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
}

// runRules copies public.<table> from prod to twin with the given column
// rules ("c0: { rule: … }" lines) and fails the test unless the run succeeds.
func runRules(t *testing.T, prodDSN, twinDSN, table string, rules []string) {
	t.Helper()
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.`+table+`
            columns:
`+strings.Join(rules, "\n"))
	if code, out, errOut := runCLI(t, "run", "--config", cfgPath); code != 0 {
		t.Fatalf("run exited %d\n%s\n%s", code, out, errOut)
	}
}

// columnText reads a column of public.<table> as text, ordered by id.
func columnText(t *testing.T, conn *pgx.Conn, table, col string) []*string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT %s::text FROM public.%s ORDER BY id", col, table))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// workflowYAML is a file with one workflow of one input (prod): its table
// entries, then its feeds section.
func workflowYAML(name, prodDSN, tables, feeds string) string {
	return `
version: 1
hmac_key: ` + testKey + `
workflows:
  - name: ` + name + `
    inputs:
      - name: prod
        dsn: ` + prodDSN + `
        tables:
` + tables + feeds
}

// lakeFeeds gets a bucket on the shared S3 server (its credentials set in
// the environment) and a folder, and returns the feeds section lines of a
// twin, an s3 feed (prefix lake/) and a files feed of the given formats.
func lakeFeeds(t *testing.T, twinDSN, s3Format, filesFormat string) (srv *s3test.Server, bucket, dir, feeds string) {
	t.Helper()
	srv, bucket, dir = s3test.MustServer(t), s3test.MustBucket(t), t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	return srv, bucket, dir, `    feeds:
      - type: twin
        dsn: ` + twinDSN + `
      - type: s3
        bucket: ` + bucket + `
        prefix: lake/
        region: ` + srv.Region + `
        endpoint: ` + srv.Endpoint() + `
        format: ` + s3Format + `
      - type: files
        path: ` + dir + `
        format: ` + filesFormat + `
`
}
