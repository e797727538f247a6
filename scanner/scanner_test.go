package scanner_test

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"

	"github.com/nopii/nopii/scanner"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		column string
		values []string
		kind   string // "" = not PII
	}{
		{"email", nil, "email"},
		{"emailAddress", nil, "email"},
		{"contact_e_mail", nil, "email"},
		{"mobile_phone", nil, "phone"},
		{"ssn", nil, "ssn"},
		{"date_of_birth", nil, "birth_date"},
		{"lastName", nil, "name"},
		{"street", nil, "address"},
		{"client_ip", nil, "ip"},
		{"notes", []string{"a@b.co", "c@d.org", "x@y.de"}, "email"},
		{"misc", []string{"4111 1111 1111 1111", "5500-0000-0000-0004"}, "card"},
		{"misc", []string{"123-45-6789", "987-65-4321"}, "ssn"},
		{"misc", []string{"10.0.0.1", "::1"}, "ip"},
		{"quantity", []string{"1", "2", "3"}, ""},
		{"hired", []string{"2020-01-02", "2021-03-04 10:00:00"}, ""},
		{"description", []string{"lorem ipsum", "dolor"}, ""},
		{"id", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.column, func(t *testing.T) {
			f, ok := scanner.Classify(tt.column, tt.values)
			if tt.kind == "" {
				if ok {
					t.Fatalf("judged PII (%s) but is not", f.Kind)
				}
				return
			}
			if !ok || f.Kind != tt.kind {
				t.Fatalf("got %q (%v), want %q", f.Kind, ok, tt.kind)
			}
			if f.Rule == "" {
				t.Fatal("no rule suggested")
			}
		})
	}
}

func TestJudgeByType(t *testing.T) {
	col := func(name, typ string) nopii.Column {
		return nopii.Column{Name: name, Type: &nopii.Type{Schema: "pg_catalog", Name: typ}}
	}
	dates := func() ([]string, error) { return []string{"2020-01-02", "2021-03-04"}, nil }
	phones := func() ([]string, error) { return []string{"+1 555 0100", "+44 20 7946 0958"}, nil }
	tests := []struct {
		col    nopii.Column
		sample func() ([]string, error)
		kind   string
	}{
		{col("hired_on", "date"), dates, ""},           // a date column's digits are no phone number
		{col("contact", "text"), phones, "phone"},      // a text column's values are judged
		{col("contact", "int8"), phones, ""},           // a number column's are not
		{col("origin", "inet"), nil, "ip"},             // inet is an IP address by its type
		{col("birth_date", "date"), nil, "birth_date"}, // names count for every type
	}
	for _, tt := range tests {
		sample := tt.sample
		if sample == nil {
			sample = func() ([]string, error) { t.Fatal("sampled a column it should judge by type or name"); return nil, nil }
		}
		f, ok, err := scanner.Judge(tt.col, sample)
		if err != nil || ok != (tt.kind != "") || f.Kind != tt.kind {
			t.Errorf("%s %s: got %q %v %v, want %q", tt.col.Name, tt.col.Type.Name, f.Kind, ok, err, tt.kind)
		}
		if ok && strings.Contains(f.Evidence, "555") {
			t.Errorf("evidence quotes a value: %q", f.Evidence)
		}
	}
}
