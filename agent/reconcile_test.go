package agent

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// TestReconcilePartitioning: a partition key that reads a column a rule
// changes leaves the partitioning (and the bounds, which hold the source's
// values) out of the twin, and says so; one on kept columns stays.
func TestReconcilePartitioning(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rules       []config.ColumnRule
		wantPlain   bool
		wantMention string
	}{
		{name: "key column redacted", rules: []config.ColumnRule{{Column: "email", Rule: "redact_email"}}, wantPlain: true, wantMention: "email (rule redact_email)"},
		{name: "key column shifted", rules: []config.ColumnRule{{Column: "day", Rule: "shift_date"}}, wantPlain: true, wantMention: "day (rule shift_date)"},
		{name: "key column kept", rules: []config.ColumnRule{{Column: "day", Rule: "keep"}}},
		{name: "another column redacted", rules: []config.ColumnRule{{Column: "note", Rule: "fake"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "visits"},
				Columns: []nopii.Column{{Name: "id"}, {Name: "day"}, {Name: "email"}, {Name: "note"}},
				Schema: &nopii.Schema{PartitionKey: "RANGE (day)", PartitionColumns: []string{"day", "email"},
					Partitions: []nopii.Partition{
						{Name: nopii.TableName{Schema: "public", Name: "visits_2024"}, Parent: nopii.TableName{Schema: "public", Name: "visits"},
							Bound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')", PartitionKey: "LIST (lower(email))"},
						{Name: nopii.TableName{Schema: "public", Name: "visits_2024_a"}, Parent: nopii.TableName{Schema: "public", Name: "visits_2024"},
							Bound: "FOR VALUES IN ('a@example.com')"},
					}}}
			ds := reconcile(tbl, tc.rules)
			plain := tbl.Schema.PartitionKey == "" && len(tbl.Schema.Partitions) == 0
			if plain != tc.wantPlain {
				t.Errorf("partitioning left out = %t, want %t (schema %+v)", plain, tc.wantPlain, tbl.Schema)
			}
			lines := strings.Join(schemaLines(ds, true), "\n")
			if tc.wantPlain && !strings.Contains(lines, "partitioning left out") || !strings.Contains(lines, tc.wantMention) {
				t.Errorf("decisions %q, want partitioning left out naming %q", lines, tc.wantMention)
			}
			if !tc.wantPlain && lines != "" {
				t.Errorf("decisions %q, want none left out", lines)
			}
		})
	}
}

// TestReconcileLiterals: a CHECK, an index or a default on a column a
// rule changes that holds a literal is named for review (the literal never
// printed); names in reg* casts, empty strings and kept columns are not.
func TestReconcileLiterals(t *testing.T) {
	tbl := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "people"},
		Columns: []nopii.Column{{Name: "id", Default: "nextval('public.people_id_seq'::regclass)"},
			{Name: "email", Default: "'noreply@example.com'::text"}, {Name: "nick", Default: "''::text"}, {Name: "status"}},
		Schema: &nopii.Schema{
			Constraints: []nopii.Constraint{
				{Name: "people_email_check", Kind: nopii.ConstraintCheck, Def: "CHECK ((email <> 'ceo@example.com'::text))", Columns: []string{"email"}},
				{Name: "people_status_check", Kind: nopii.ConstraintCheck, Def: "CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))", Columns: []string{"status"}},
			},
			Indexes: []nopii.Index{{Name: "people_vip", Def: "USING btree (id) WHERE (email = 'vip@example.com'::text)", Columns: []string{"id", "email"}}},
		}}
	rules := []config.ColumnRule{{Column: "email", Rule: "redact_email"}, {Column: "nick", Rule: "fake"}, {Column: "id", Rule: "hash"}}
	lines := schemaLines(reconcile(tbl, rules), false)
	all := strings.Join(lines, "\n")
	for _, want := range []string{"check constraint people_email_check reads email (rule redact_email) and holds literals",
		"index people_vip reads id (rule hash), email (rule redact_email) and holds literals", "default of column email reads email (rule redact_email) and holds literals"} {
		if !strings.Contains(all, want) {
			t.Errorf("decisions do not say %q:\n%s", want, all)
		}
	}
	for _, not := range []string{"example.com", "people_status_check", "column nick", "column id"} {
		if strings.Contains(all, not) {
			t.Errorf("decisions hold %q:\n%s", not, all)
		}
	}
}
