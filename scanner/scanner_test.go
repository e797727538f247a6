package scanner_test

import (
	"testing"

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
