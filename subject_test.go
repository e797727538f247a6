package nopii_test

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"
)

func TestParseSubjectMatch(t *testing.T) {
	for _, tc := range []struct {
		in, col, val, err string
	}{
		{in: "email=a@b.com", col: "email", val: "a@b.com"},
		{in: " email =a=b", col: "email", val: "a=b"},
		{in: "email", err: "want column=value"},
		{in: "=x", err: "no column"},
		{in: "email=", err: "no value after email="},
	} {
		m, err := nopii.ParseSubjectMatch(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || m.Column != tc.col || m.Value != tc.val):
			t.Errorf("%q: %+v, %v", tc.in, m, err)
		}
	}
	if r := (nopii.SubjectRows{Rows: 1, TableRows: 200}); r.Proportion() != 0.005 || (nopii.SubjectRows{}).Proportion() != 0 {
		t.Errorf("proportion")
	}
}
