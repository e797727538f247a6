package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

func TestSelectRelations(t *testing.T) {
	rel := func(s, n string, k nopii.RelKind, part bool) nopii.Relation {
		return nopii.Relation{Name: nopii.TableName{Schema: s, Name: n}, Kind: k, Partition: part}
	}
	catalog := []nopii.Relation{
		rel("public", "customer", nopii.RelTable, false),
		rel("public", "event", nopii.RelPartitioned, false),
		rel("public", "event_2024", nopii.RelTable, true),
		rel("public", "film_text", nopii.RelTable, false),
		rel("public", "active_customer", nopii.RelView, false),
		rel("public", "sales_mv", nopii.RelMatView, false),
		rel("billing", "invoice", nopii.RelTable, false),
		rel("billing", "remote_ledger", nopii.RelForeign, false),
	}
	entry := func(name string, pattern, exclude bool) config.Table {
		s, tb, _, _ := config.SplitTableName(name)
		return config.Table{Name: name, Schema: s, Table: tb, Pattern: pattern, Exclude: exclude}
	}
	tests := []struct {
		name    string
		entries []config.Table
		want    string
	}{
		{"pattern picks tables and partitioned roots only",
			[]config.Table{entry("public.*", true, false)},
			"[public.customer public.event public.film_text]"},
		{"explicit entries pick views and partitions too",
			[]config.Table{entry("public.active_customer", false, false), entry("public.event_2024", false, false)},
			"[public.active_customer public.event_2024]"},
		{"exclude removes what a pattern chose",
			[]config.Table{entry("public.*", true, false), entry("public.film_text", false, true)},
			"[public.customer public.event]"},
		{"excluding patterns",
			[]config.Table{entry("*.*", true, false), entry("billing.*", true, true)},
			"[public.customer public.event public.film_text]"},
		{"explicit entry overrides the pattern's defaults",
			[]config.Table{entry("public.*", true, false), entry("public.customer", false, false)},
			"[public.customer* public.event public.film_text]"},
		{"missing explicit table is an error, not silence",
			[]config.Table{entry("public.nope", false, false)},
			"[public.nope!]"},
		{"glob characters",
			[]config.Table{entry("public.f?lm_*", true, false)},
			"[public.film_text]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &config.Input{Name: "prod", Tables: tt.entries}
			var got []string
			for _, j := range selectRelations(in, catalog) {
				s := j.rel.Name.String()
				if j.entry != nil && !j.entry.Pattern {
					if len(tt.entries) > 1 && tt.entries[0].Pattern {
						s += "*" // chosen by its explicit entry
					}
				}
				if j.err != nil {
					if !errors.Is(j.err, nopii.ErrNotFound) {
						t.Fatalf("unexpected error %v", j.err)
					}
					s += "!"
				}
				got = append(got, s)
			}
			if fmt.Sprint(got) != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}
