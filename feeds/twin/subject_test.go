package twin_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestForgetIsOneTransaction: the rows of every table and the suppression
// list go together; when one table's delete fails, nothing changed.
func TestForgetIsOneTransaction(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	conn := mustConnect(t, dsn)
	mustExec(t, conn,
		`CREATE TABLE public.a (v text, source_primary_key text NOT NULL UNIQUE)`,
		`INSERT INTO public.a SELECT 'v' || i, i::text FROM generate_series(1, 10) i`,
		`CREATE TABLE public.broken (v text)`) // no source_primary_key: its delete fails
	f, err := twin.Open(testContext(t), dsn, twin.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	key := func(table string) nopii.StateKey {
		return nopii.StateKey{Workflow: "w", Input: "in", Table: nopii.TableName{Schema: "public", Name: table}}
	}
	table := func(name string, keys ...string) nopii.ForgetTable {
		var hashes []string
		for _, k := range keys {
			hashes = append(hashes, k+"-hash")
		}
		return nopii.ForgetTable{Key: key(name), Target: nopii.TableName{Schema: "public", Name: name}, Keys: keys, Forgotten: hashes}
	}
	req := nopii.Forget{RequestID: "5b0a3c9e-0000-4000-8000-000000000001", At: time.Now(),
		Tables: []nopii.ForgetTable{table("a", "2", "3"), table("broken", "x")}}
	if _, err := f.Forget(testContext(t), req); err == nil {
		t.Fatal("forget with a broken table succeeded")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.a"); n != 10 {
		t.Errorf("a failed forget deleted rows: %d left", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM nopii.forgotten_keys"); n != 0 {
		t.Errorf("a failed forget recorded %d forgotten keys", n)
	}

	// A table the twin does not have yet still gets its keys forgotten.
	req.Tables = []nopii.ForgetTable{table("a", "2", "3", "99"), table("later", "7")}
	deleted, err := f.Forget(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || len(deleted[0]) != 2 || len(deleted[1]) != 0 {
		t.Errorf("deleted %v", deleted)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.a"); n != 8 {
		t.Errorf("%d rows left, want 8", n)
	}
	for name, want := range map[string]int{"a": 3, "later": 1, "broken": 0} {
		got, err := f.ForgottenKeys(testContext(t), key(name))
		if err != nil || len(got) != want {
			t.Errorf("forgotten keys of %s: %v, %v; want %d", name, got, err, want)
		}
	}
	if n, err := f.CountKeys(testContext(t), nopii.TableName{Schema: "public", Name: "a"}, []string{"1", "2"}); n != 1 || err != nil {
		t.Errorf("CountKeys = %d, %v", n, err)
	}
	if n, err := f.CountKeys(testContext(t), nopii.TableName{Schema: "public", Name: "missing"}, []string{"1"}); n != 0 || err != nil {
		t.Errorf("CountKeys of a missing table = %d, %v", n, err)
	}
	// Audit records are upserted per request, subject and target.
	rec := nopii.SubjectAudit{RequestID: req.RequestID, Subject: "s", At: req.At, Workflow: "w", Target: "twin", RowsDeleted: 2, Status: "failed", Error: "x"}
	for _, status := range []string{"failed", "done"} {
		rec.Status = status
		if err := f.RecordSubjectRequests(testContext(t), []nopii.SubjectAudit{rec}); err != nil {
			t.Fatal(err)
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM nopii.subject_requests WHERE status = 'done'"); n != 1 {
		t.Errorf("audit rows: %d done", n)
	}
}

// TestForgetWaitsForLoadsInFlight: a forget that comes while a full copy of
// the table is loading (with rows read before the request) waits for it,
// then deletes the subject's rows from the new copy, which therefore cannot
// swap them back in.
func TestForgetWaitsForLoadsInFlight(t *testing.T) {
	f, db, tg := loadedNotes(t, "notes")
	ctx := testContext(t)
	l, err := f.FullCopy(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	for _, r := range noteRows(1, 5, "new") {
		if err := l.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.Forget(ctx, nopii.Forget{RequestID: "5b0a3c9e-0000-4000-8000-000000000002", At: time.Now(),
			Tables: []nopii.ForgetTable{{Key: nopii.StateKey{Workflow: "w", Input: "in", Table: tg.Name}, Target: tg.Name,
				Keys: []string{"2"}, Forgotten: []string{"2-hash"}}}})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("forget did not wait for the load in flight (err %v)", err)
	case <-time.After(time.Second):
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("forget after the load: %v", err)
	}
	want := slices.Concat(noteLines(1, 1, "new"), noteLines(3, 5, "new"))
	if got := notes(t, db, tg.Name); !slices.Equal(got, want) {
		t.Errorf("twin after the load and the forget:\n got %q\nwant %q", got, want)
	}
}

// TestForgottenKeysWithoutTheTable: a twin that has never served a subject
// request has no suppression list; reading it (the cdc stream does every few
// seconds) returns none and puts no error in the twin's server log. Once the
// table exists, its keys are read.
func TestForgottenKeysWithoutTheTable(t *testing.T) {
	cl := pgtest.MustNewCluster(t)
	dsn, err := cl.CreateDatabase(testContext(t), "twin")
	if err != nil {
		t.Fatal(err)
	}
	f, err := twin.Open(testContext(t), dsn, twin.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k := nopii.StateKey{Workflow: "w", Input: "in", Table: nopii.TableName{Schema: "public", Name: "a"}}
	for range 3 {
		if keys, err := f.ForgottenKeys(testContext(t), k); err != nil || keys != nil {
			t.Fatalf("ForgottenKeys without the table = %v, %v; want none", keys, err)
		}
	}
	if b, err := os.ReadFile(cl.LogPath()); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(b), "forgotten_keys") {
		t.Errorf("the twin's server log mentions forgotten_keys:\n%s", b)
	}
	mustExec(t, mustConnect(t, dsn), `CREATE SCHEMA nopii`,
		`CREATE TABLE nopii.forgotten_keys (workflow text, input text, source_table text, key_hmac text, request_id uuid, forgotten_at timestamptz DEFAULT now())`,
		`INSERT INTO nopii.forgotten_keys VALUES ('w', 'in', 'public.a', 'h1', gen_random_uuid())`)
	if keys, err := f.ForgottenKeys(testContext(t), k); err != nil || !slices.Equal(keys, []string{"h1"}) {
		t.Fatalf("ForgottenKeys once the table exists = %v, %v; want [h1]", keys, err)
	}
}
