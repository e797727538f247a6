package postgres_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

// TestReplicationKeys streams inserts, a key change and deletes of tables
// with every kind of key, and checks that each key the stream renders
// equals the source_primary_key a full copy computes for the same row: the
// local renderings (integers, text, uuid, enum, domain, composites of them)
// and the source's (timestamptz, numeric, date in a composite).
func TestReplicationKeys(t *testing.T) {
	ctx := testContext(t)
	dsn := pgtest.MustDatabase(t)
	conn := mustConnect(t, dsn)
	mustExec(t, conn, `
		CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy "really"');
		CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
		CREATE TABLE public.k_int2 (k smallint PRIMARY KEY);
		CREATE TABLE public.k_int8 (k bigint PRIMARY KEY, v text);
		CREATE TABLE public.k_text (k text PRIMARY KEY);
		CREATE TABLE public.k_varchar (k varchar(20) PRIMARY KEY);
		CREATE TABLE public.k_uuid (k uuid PRIMARY KEY);
		CREATE TABLE public.k_enum (k public.mood PRIMARY KEY);
		CREATE TABLE public.k_dom (k public.posint PRIMARY KEY);
		CREATE TABLE public.k_comp (a int, b text, c uuid, PRIMARY KEY (a, b, c));
		CREATE TABLE public.k_ts (k timestamptz PRIMARY KEY);
		CREATE TABLE public.k_num (k numeric PRIMARY KEY);
		CREATE TABLE public.k_comp_date (a int, d date, PRIMARY KEY (a, d));`)
	names := []string{"k_int2", "k_int8", "k_text", "k_varchar", "k_uuid", "k_enum", "k_dom", "k_comp", "k_ts", "k_num", "k_comp_date"}
	var tables []nopii.TableName
	for _, n := range names {
		tables = append(tables, nopii.TableName{Schema: "public", Name: n})
	}
	rp, err := postgres.OpenReplication(ctx, dsn, postgres.ReplicationOptions{Name: "prod", Slot: postgres.ReplicationName("Keys-Test", "prod"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	start, err := rp.Ensure(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if !start.Created || start.Snapshot == "" || start.LSN == 0 {
		t.Fatalf("Ensure on a fresh database: %+v", start)
	}
	src, err := postgres.Open(ctx, dsn, postgres.Options{Name: "prod", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	described := map[nopii.TableName]*nopii.Table{}
	for _, n := range tables {
		tb, err := src.Describe(ctx, nopii.Relation{Name: n}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.CheckTable(ctx, tb); err != nil {
			t.Fatal(err)
		}
		if err := rp.Register(tb); err != nil {
			t.Fatal(err)
		}
		described[n] = tb
	}
	src.Close() // its locks would block the ALTERs below
	if err := rp.Start(ctx, start.LSN); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, `
		INSERT INTO public.k_int2 VALUES (-32768), (0), (32767);
		INSERT INTO public.k_int8 VALUES (-9223372036854775808, 'a'), (9223372036854775807, 'b'), (42, 'c');
		INSERT INTO public.k_text VALUES ('plain'), (E'quote " back\\ tab\t nl\n cr\r bell\x07'), ('unicode é ☃ 𝄞'), ('');
		INSERT INTO public.k_varchar VALUES ('v"1');
		INSERT INTO public.k_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('00000000-0000-0000-0000-000000000000');
		INSERT INTO public.k_enum VALUES ('sad'), ('happy "really"');
		INSERT INTO public.k_dom VALUES (1), (2147483647);
		INSERT INTO public.k_comp VALUES (1, E'x"\\y\n', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), (-2, '', '00000000-0000-0000-0000-000000000001');
		INSERT INTO public.k_ts VALUES ('2024-02-29 12:34:56.789+05'), ('1999-12-31 23:59:59.999999+00'), ('infinity');
		INSERT INTO public.k_num VALUES (1.50), (-0.000001), (12345678901234567890.1234), ('NaN');
		INSERT INTO public.k_comp_date VALUES (7, '2024-01-01'), (8, '0044-03-15 BC');
		UPDATE public.k_int8 SET k = 43 WHERE k = 42;
		DELETE FROM public.k_text WHERE k = 'plain';`)
	end := queryLSN(t, conn)
	streamed := map[nopii.TableName][]string{}
	var oldKeys, deleted, seen []string
	for {
		c, err := rp.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) < 40 {
			seen = append(seen, fmt.Sprintf("%d@%s", c.Kind, c.LSN))
		}
		switch c.Kind {
		case nopii.ChangeUpsert:
			streamed[c.Table] = append(streamed[c.Table], string(c.Key))
			if c.OldKey != nil {
				oldKeys = append(oldKeys, string(c.OldKey))
			}
			if len(c.Values) != len(described[c.Table].Columns) {
				t.Fatalf("%s: %d values for %d columns", c.Table, len(c.Values), len(described[c.Table].Columns))
			}
		case nopii.ChangeDelete:
			deleted = append(deleted, string(c.Key))
		case nopii.ChangeDrift:
			t.Fatalf("drift on %s without a schema change", c.Table)
		}
		if (c.Kind == nopii.ChangeIdle || c.Kind == nopii.ChangeCommit) && c.LSN >= end {
			break
		}
	}
	if len(seen) < 10 {
		t.Errorf("the stream ended after %v (the source's position %s, the slot's start %s)", seen, end, start.LSN)
	}
	if !slices.Equal(oldKeys, []string{"42"}) {
		t.Errorf("old keys of the key change: %q, want [42]", oldKeys)
	}
	if !slices.Equal(deleted, []string{"plain"}) {
		t.Errorf("deleted keys: %q, want [plain]", deleted)
	}
	// What a full copy computes for the same rows (the key change's new
	// row, 43, counted once; 'plain' gone).
	src2, err := postgres.Open(ctx, dsn, postgres.Options{Name: "prod", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	for _, n := range tables {
		var copied []string
		_, err := src2.Copy(ctx, described[n], func(v [][]byte) error {
			copied = append(copied, string(v[len(v)-1]))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := slices.DeleteFunc(slices.Clone(streamed[n]), func(k string) bool { return k == "42" || k == "plain" })
		slices.Sort(got)
		slices.Sort(copied)
		if !slices.Equal(got, copied) {
			t.Errorf("%s: streamed keys %q\n  full copy keys %q", n, got, copied)
		}
	}
	if t.Failed() {
		return
	}
	// A confirmed position is what the slot keeps.
	if err := rp.Confirm(end); err != nil {
		t.Fatal(err)
	}
}

func queryLSN(t *testing.T, conn *pgx.Conn) nopii.LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := nopii.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestReplicationName(t *testing.T) {
	long := strings.Repeat("x", 80)
	cases := []struct{ workflow, input, want string }{
		{"ml-experimentation", "prod", "nopii_ml_experimentation_prod"},
		{"Billing EU", "Prod.1", "nopii_billing_eu_prod_1"},
		{"wé", "p", "nopii_w__p"},
	}
	for _, c := range cases {
		if got := postgres.ReplicationName(c.workflow, c.input); got != c.want {
			t.Errorf("ReplicationName(%q, %q) = %q, want %q", c.workflow, c.input, got, c.want)
		}
	}
	a, b := postgres.ReplicationName(long, "a"), postgres.ReplicationName(long, "b")
	if len(a) != 63 || len(b) != 63 || a == b || !strings.HasPrefix(a, "nopii_xxx") {
		t.Errorf("long names %q and %q: want 63 bytes each, distinct", a, b)
	}
}
