package didyoumean

import "testing"

func TestClosest(t *testing.T) {
	valid := []string{"updated_at", "created_at", "redact_email", "first_name", "id", "customer_id"}
	for _, tc := range []struct{ name, want string }{
		{"updatd_at", "updated_at"},
		{"Updated_At", "updated_at"},
		{"updated", "updated_at"},
		{"redact_mail", "redact_email"},
		{"firstname", "first_name"},
		{"customerid", "customer_id"},
		{"ib", "id"},
		{"xyz", ""},
		{"scramble", ""},
	} {
		if got := Closest(tc.name, valid); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
