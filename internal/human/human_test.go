package human

import "testing"

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 62, "4.0 EiB"},
	} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "workflow", "0 workflows"},
		{1, "workflow", "1 workflow"},
		{2, "rule", "2 rules"},
		{1, "problem", "1 problem"},
		{3, "column", "3 columns"},
		{2, "entry", "2 entries"},
		{2, "key", "2 keys"},
		{2, "match", "2 matches"},
		{2, "bus", "2 buses"},
		{1, "attempt", "1 attempt"},
	} {
		if got := Count(tc.n, tc.noun); got != tc.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
}
