package agent

import (
	"context"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

type countingLoad struct{ keys []string }

func (l *countingLoad) WriteRow(v [][]byte) error {
	l.keys = append(l.keys, string(v[len(v)-1]))
	return nil
}
func (l *countingLoad) Commit(ctx context.Context) error { return nil }
func (l *countingLoad) Abort()                           {}

var testHMACKey = []byte("test-hmac-key-0123456789abcdef-0123456789")

func rowPathJob(t *testing.T, rules ...config.ColumnRule) *job {
	t.Helper()
	text := &nopii.Type{OID: 25, Schema: "pg_catalog", Name: "text", SQL: "text"}
	tb := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "t"}, PrimaryKey: []string{"id"},
		Columns: []nopii.Column{{Name: "id", Type: text, Typmod: -1, TypeSQL: "text"}, {Name: "v", Type: text, Typmod: -1, TypeSQL: "text"}}}
	j := &job{table: tb, entry: &config.Table{Columns: rules}}
	for _, r := range rules {
		j.redacted = append(j.redacted, r.Column)
	}
	return j
}

// The row path drops rows whose feed key is on the suppression list — the
// key as the feeds hold it, hashed where a key column has a rule — and the
// check allocates nothing per row.
func TestRowPathDropsForgottenKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []config.ColumnRule
	}{
		{"plain key", nil},
		{"redacted value", []config.ColumnRule{{Column: "v", Rule: "hash"}}},
		{"redacted key", []config.ColumnRule{{Column: "id", Rule: "hash"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := rowPathJob(t, tc.rules...)
			keys, err := feedKeys(j, testHMACKey, []string{"b"})
			if err != nil {
				t.Fatal(err)
			}
			hash := forgottenHasher(testHMACKey)
			fs, err := newForgottenSet(testHMACKey, []string{hash([]byte(keys[0]))})
			if err != nil {
				t.Fatal(err)
			}
			c, err := compile(j, testHMACKey)
			if err != nil {
				t.Fatal(err)
			}
			load := &countingLoad{}
			p := newRowPath(c, j.table, fs, []nopii.Load{load})
			for _, k := range []string{"a", "b", "c"} {
				if err := p.row([][]byte{[]byte(k), []byte("value"), []byte(k)}); err != nil {
					t.Fatal(err)
				}
			}
			if p.rows != 2 || p.suppressed != 1 || len(load.keys) != 2 || load.keys[0] == keys[0] || load.keys[1] == keys[0] {
				t.Errorf("rows %d, suppressed %d, keys written %q (forgotten %q)", p.rows, p.suppressed, load.keys, keys[0])
			}
			if tc.name == "plain key" {
				p.loads = nil
				vals := [][]byte{[]byte("a"), []byte("value"), []byte("a")}
				if n := testing.AllocsPerRun(1000, func() { p.row(vals) }); n != 0 {
					t.Errorf("%v allocations per row with a suppression list", n)
				}
			}
		})
	}
	if fs, err := newForgottenSet(testHMACKey, nil); fs != nil || err != nil || fs.has([]byte("x")) {
		t.Errorf("an empty list is a nil set: %v, %v", fs, err)
	}
	if _, err := newForgottenSet(testHMACKey, []string{"zz"}); err == nil {
		t.Errorf("a malformed hash was accepted")
	}
}

// The subject hash is keyed, stable under the order of identifiers, and
// differs between subjects.
func TestSubjectHash(t *testing.T) {
	a := SubjectRequest{Matches: []nopii.SubjectMatch{{Column: "email", Value: "a@b.c"}, {Column: "phone", Value: "1"}}}
	b := SubjectRequest{Matches: []nopii.SubjectMatch{{Column: "phone", Value: "1"}, {Column: "email", Value: "a@b.c"}}}
	c := SubjectRequest{Matches: []nopii.SubjectMatch{{Column: "email", Value: "x@b.c"}}}
	if subjectHash(testHMACKey, a) != subjectHash(testHMACKey, b) || subjectHash(testHMACKey, a) == subjectHash(testHMACKey, c) ||
		subjectHash(testHMACKey, a) == subjectHash([]byte("another-key-0123456789abcdef-0123456789"), a) || len(subjectHash(testHMACKey, a)) != 64 {
		t.Errorf("subject hashes: %s %s %s", subjectHash(testHMACKey, a), subjectHash(testHMACKey, b), subjectHash(testHMACKey, c))
	}
}

func TestCheckRequests(t *testing.T) {
	wf := &config.Workflow{Name: "w", Inputs: []config.Input{{Name: "prod", Tables: []config.Table{{Schema: "public", Table: "customer", Identifies: []string{"email", "name"}}}}}}
	for _, tc := range []struct {
		reqs []SubjectRequest
		want string
	}{
		{nil, "no request"},
		{[]SubjectRequest{{Matches: []nopii.SubjectMatch{{Column: "phone", Value: "secret-555"}}}}, `column "phone" is not declared identifying in workflow w; identifying columns: email, name`},
		{[]SubjectRequest{{Matches: []nopii.SubjectMatch{{Column: "email", Value: "a@b.c"}}}}, ""},
	} {
		err := checkRequests(wf, tc.reqs)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tc.want == "" && got != "" || tc.want != "" && (len(got) < len(tc.want) || got[:len(tc.want)] != tc.want) {
			t.Errorf("checkRequests: %q, want %q", got, tc.want)
		}
	}
}
