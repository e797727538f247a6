package agent

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

func TestVirtualReferences(t *testing.T) {
	intType := &nopii.Type{Schema: "pg_catalog", Name: "int4", SQL: "integer"}
	table := func(name string, key []string, cols ...string) *nopii.Table {
		tb := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: name}, PrimaryKey: key}
		for _, c := range cols {
			tb.Columns = append(tb.Columns, nopii.Column{Name: c, Type: intType, TypeSQL: "integer"})
		}
		return tb
	}
	rels := []nopii.Relation{{Name: nopii.TableName{Schema: "public", Name: "customer"}}, {Name: nopii.TableName{Schema: "public", Name: "events"}},
		{Name: nopii.TableName{Schema: "public", Name: "pair"}}, {Name: nopii.TableName{Schema: "public", Name: "audit"}}}
	ref := func(cols []string, to string, toCols ...string) config.Reference {
		s, n, _, _ := config.SplitTableName(to)
		return config.Reference{Columns: cols, Table: to, Schema: s, Name: n, To: toCols, Pos: config.Pos{File: "f.yaml", Line: 7, Col: 9}}
	}
	tests := []struct {
		name string
		ref  config.Reference
		want string // the reference, or the error's text
	}{
		{"to the key by default", ref([]string{"user_id"}, "public.customer"), "public.events(user_id) → public.customer(id)"},
		{"named columns", ref([]string{"user_id"}, "public.customer", "id"), "public.events(user_id) → public.customer(id)"},
		{"missing column", ref([]string{"usr_id"}, "public.customer"), `f.yaml:7:9: reference from public.events: column "usr_id": not found in table public.events; did you mean "user_id"?`},
		{"missing target column", ref([]string{"user_id"}, "public.customer", "ids"), `column "ids": not found in table public.customer; did you mean "id"?`},
		{"missing table", ref([]string{"user_id"}, "public.custmer"), "table public.custmer: not found in the source; did you mean public.customer?"},
		{"table not copied", ref([]string{"user_id"}, "public.audit"), "the input does not copy public.audit"},
		{"key of another width", ref([]string{"user_id"}, "public.pair"), "its key (a, b) has 2 column(s): name them with to:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := &job{table: table("events", []string{"id"}, "id", "user_id"), entry: &config.Table{References: []config.Reference{tt.ref}}}
			jobs := []*job{events, {table: table("customer", []string{"id"}, "id")}, {table: table("pair", []string{"a", "b"}, "a", "b")}}
			got := virtualReferences(jobs, rels)
			switch {
			case len(got) == 1 && events.err == nil:
				if got[0].String() != tt.want || !got[0].Virtual {
					t.Errorf("reference %s (virtual %t), want %s", got[0], got[0].Virtual, tt.want)
				}
			case events.err != nil:
				if !strings.Contains(events.err.Error(), tt.want) {
					t.Errorf("error %q, want it to contain %q", events.err, tt.want)
				}
			default:
				t.Errorf("no reference and no error")
			}
		})
	}
}

func TestUnfollowed(t *testing.T) {
	intType := &nopii.Type{Schema: "pg_catalog", Name: "int4", SQL: "integer"}
	textType := &nopii.Type{Schema: "pg_catalog", Name: "text", SQL: "text"}
	col := func(n string, ty *nopii.Type) nopii.Column { return nopii.Column{Name: n, Type: ty, TypeSQL: ty.SQL} }
	users := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "users"}, PrimaryKey: []string{"id"}, Columns: []nopii.Column{col("id", intType)}}
	events := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "events"}, Columns: []nopii.Column{col("id", intType), col("user_id", intType)}}
	views := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "page_views"}, Columns: []nopii.Column{col("users_id", intType), col("session_id", intType)}}
	notes := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "notes"}, Columns: []nopii.Column{col("user_id", textType)}}
	orders := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "orders"}, Columns: []nopii.Column{col("user_id", intType)}}
	refs := []nopii.Reference{{From: orders.Name, Columns: []string{"user_id"}, To: users.Name, ToColumns: []string{"id"}}}
	got := unfollowed("prod", []*nopii.Table{users}, []*nopii.Table{users, events, views, notes, orders}, refs)
	var names []string
	for _, u := range got {
		names = append(names, u.Table+"."+u.Column)
	}
	// notes.user_id is text (not the key's type); orders.user_id has a
	// foreign key; session_id names no subject table.
	if want := "public.events.user_id public.page_views.users_id"; strings.Join(names, " ") != want {
		t.Errorf("unfollowed %v, want %s", names, want)
	}
	if len(got) > 0 && got[0].Add != "references:\n  - { columns: [user_id], table: public.users, to: [id] }" {
		t.Errorf("add %q", got[0].Add)
	}
}
