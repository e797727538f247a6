package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestDeltaChildOfWindowedParent: orders (mode delta) references users,
// whose window leaves old users out of the twin. A new order of an old
// user is a row the twin's key to users cannot hold, and a NOT VALID key
// would still refuse it: the key is left out, said, and the delta lands.
func TestDeltaChildOfWindowedParent(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `
		CREATE TABLE public.users (id int PRIMARY KEY, created_at timestamptz NOT NULL);
		CREATE TABLE public.orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES public.users, updated_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO public.users SELECT i, now() - i * interval '1 day' FROM generate_series(1, 100) i;
		INSERT INTO public.orders SELECT i, 1 + i % 20, now() FROM generate_series(1, 50) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.users
            created_at: created_at
            window: 30d
          - name: public.orders
            updated_at: updated_at`)
	runJSON(t, cfg, 0)
	mustExec(t, prod, `INSERT INTO public.orders (id, user_id) VALUES (1000, 90)`)
	rep := runJSON(t, cfg, 0)
	tr := tableReport(t, rep, "public.orders")
	if tr.Error != "" {
		t.Fatalf("orders' delta failed: %s", tr.Error)
	}
	if n := queryString(t, mustConnect(t, twinDSN), "SELECT count(*) FROM public.orders WHERE id = 1000"); n != "1" {
		t.Errorf("the new order of an old user is not in the twin (%s rows)", n)
	}
	want := "foreign key orders_user_id_fkey left out: its parent public.users is windowed (window: 720h0m0s): the twin holds only its newer rows, and public.orders is updated in place by deltas"
	if notes := strings.Join(tr.Schema, "\n"); !strings.Contains(notes, want) {
		t.Errorf("orders' report says %q, want %q", notes, want)
	}
}
