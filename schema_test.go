package nopii_test

import (
	"testing"

	"github.com/nopii/nopii"
)

func TestPrefixSchemas(t *testing.T) {
	schemas := map[string]bool{"public": true, "app": true, "Mixed Case": true}
	for _, tt := range []struct{ in, want string }{
		{"FOREIGN KEY (user_id) REFERENCES public.users(id)", `FOREIGN KEY (user_id) REFERENCES "b_public".users(id)`},
		{"nextval('public.orders_id_seq'::regclass)", `nextval('"b_public".orders_id_seq'::regclass)`},
		{`SELECT users.id FROM app.users WHERE users.name = 'public.users'`, `SELECT users.id FROM "b_app".users WHERE users.name = 'public.users'`},
		{`CHECK (x <> E'app.\'y')`, `CHECK (x <> E'app.\'y')`},
		{`"Mixed Case".t`, `"b_Mixed Case".t`},
		{`other.t, public`, `other.t, public`},
		{`a.public.b`, `a.public.b`},
		{`1.5 + app.f(2.0)`, `1.5 + "b_app".f(2.0)`},
	} {
		if got := nopii.PrefixSchemas(tt.in, "b_", schemas); got != tt.want {
			t.Errorf("PrefixSchemas(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := nopii.PrefixSchemas("public.x", "", schemas); got != "public.x" {
		t.Errorf("no prefix changed %q", got)
	}
}

func TestIndexTail(t *testing.T) {
	for _, tt := range []struct{ def, table, want string }{
		{"CREATE INDEX i ON public.t USING btree (lower(a)) WHERE (b > 0)", "public.t", "USING btree (lower(a)) WHERE (b > 0)"},
		{"CREATE UNIQUE INDEX i ON ONLY app.events USING btree (kind)", "app.events", "USING btree (kind)"},
	} {
		if got, ok := nopii.IndexTail(tt.def, tt.table); !ok || got != tt.want {
			t.Errorf("IndexTail(%q) = %q, %v; want %q", tt.def, got, ok, tt.want)
		}
	}
}
