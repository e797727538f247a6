package twin_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestConformance runs the suite every feed passes.
func TestConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) (nopii.Feed, feedtest.Reader) {
		dsn := pgtest.MustDatabase(t)
		f, err := twin.Open(context.Background(), dsn, twin.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, &twinReader{dsn: dsn}
	})
}

// twinReader reads a twin table back as PostgreSQL's output functions print
// its values, keyed by source_primary_key.
type twinReader struct{ dsn string }

func (r *twinReader) Rows(t *testing.T, target nopii.TableName) map[string][]string {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"TimeZone": "UTC", "DateStyle": "ISO", "IntervalStyle": "postgres", "extra_float_digits": "1"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", target.Quoted()).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return nil
	}
	// Text results, raw: exactly what the output functions print.
	res := conn.PgConn().ExecParams(ctx, "SELECT * FROM "+target.Quoted(), nil, nil, nil, []int16{0})
	out := map[string][]string{}
	keyCol := -1
	for i, fd := range res.FieldDescriptions() {
		if fd.Name == nopii.SourcePrimaryKeyColumn {
			keyCol = i
		}
	}
	for res.NextRow() {
		vals := res.Values()
		row := make([]string, 0, len(vals)-1)
		for i, v := range vals {
			switch {
			case i == keyCol:
			case v == nil:
				row = append(row, feedtest.Null)
			default:
				row = append(row, string(v))
			}
		}
		out[string(vals[keyCol])] = row
	}
	if _, err := res.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLock: the run lock of two feeds on one twin database.
func TestLock(t *testing.T) {
	feedtest.RunLock(t, func(t *testing.T) (a, b feedtest.Locker) {
		dsn := pgtest.MustDatabase(t)
		open := func() *twin.Feed {
			f, err := twin.Open(context.Background(), dsn, twin.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
		return open(), open()
	})
}
