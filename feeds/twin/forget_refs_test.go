package twin_test

import (
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestForgetDropsReferencesFromTablesOutsideTheRequest: a subject's row
// that rows of a table the request does not reach reference (a table the
// request holds no keys of, or one users made in the twin) is deleted, and
// those references become NULL where their column allows it.
func TestForgetDropsReferencesFromTablesOutsideTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		children []string // statements making the referencing table and its rows
		inReq    bool     // the request names the referencing table, with no keys
	}{
		{name: "a table of the request without keys", inReq: true, children: []string{
			`CREATE TABLE public.people (id int, address_id int REFERENCES public.addresses (id), source_primary_key text NOT NULL UNIQUE)`,
			`INSERT INTO public.people VALUES (1, 10, 'p1')`}},
		{name: "a table outside the request", children: []string{
			`CREATE TABLE public.people (id int, address_id int REFERENCES public.addresses (id), source_primary_key text NOT NULL UNIQUE)`,
			`INSERT INTO public.people VALUES (1, 10, 'p1')`}},
		{name: "a table users made", children: []string{
			`CREATE TABLE public.people (id int, address_id int REFERENCES public.addresses (id))`,
			`INSERT INTO public.people VALUES (1, 10)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			conn := mustConnect(t, dsn)
			mustExec(t, conn, append([]string{
				`CREATE TABLE public.addresses (id int PRIMARY KEY, street text, source_primary_key text NOT NULL UNIQUE)`,
				`INSERT INTO public.addresses VALUES (10, 'x', 'a10'), (11, 'y', 'a11')`}, tc.children...)...)
			f, err := twin.Open(testContext(t), dsn, twin.Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			table := func(name string, keys ...string) nopii.ForgetTable {
				tn := nopii.TableName{Schema: "public", Name: name}
				return nopii.ForgetTable{Key: nopii.StateKey{Workflow: "w", Input: "in", Table: tn}, Target: tn, Keys: keys, Forgotten: keys}
			}
			req := nopii.Forget{RequestID: "5b0a3c9e-0000-4000-8000-000000000003", At: time.Now(), Tables: []nopii.ForgetTable{table("addresses", "a10")}}
			if tc.inReq {
				req.Tables = append(req.Tables, table("people"))
			}
			if _, err := f.Forget(testContext(t), req); err != nil {
				t.Fatalf("forget: %v", err)
			}
			if n := queryInt(t, conn, "SELECT count(*) FROM public.addresses"); n != 1 {
				t.Errorf("%d addresses left, want 1", n)
			}
			if n := queryInt(t, conn, "SELECT count(*) FROM public.people WHERE address_id IS NULL"); n != 1 {
				t.Errorf("the reference to the forgotten address is still there")
			}
		})
	}
}
