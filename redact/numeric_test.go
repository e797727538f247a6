package redact_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nopii/nopii/redact"
)

// numericText decodes a numeric wire value with pgx and prints it.
func numericText(tb testing.TB, b []byte) string {
	tb.Helper()
	var n pgtype.Numeric
	if err := pgtype.NewMap().Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, b, &n); err != nil {
		tb.Fatalf("pgx rejects numeric %x: %v", b, err)
	}
	v, err := n.Value()
	if err != nil {
		tb.Fatal(err)
	}
	return v.(string)
}

func TestDecimalRoundTrip(t *testing.T) {
	cases := []string{"0", "1", "-1", "123.45", "-0.001", "0.0001", "10000", "99999999.9999", "1e5", "1.50",
		"12345678901234567890.123456789", "-0.00000001", "NaN", "Infinity", "-Infinity", "100", "0.10"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		intPart := r.IntN(1e9)
		frac := r.IntN(6)
		s := fmt.Sprint(intPart)
		if frac > 0 {
			s += "." + fmt.Sprintf("%0*d", frac, r.IntN(1_000_000)%pow(frac))
		}
		if r.IntN(2) == 0 {
			s = "-" + s
		}
		cases = append(cases, s)
	}
	for _, s := range cases {
		var x redact.Decimal
		if err := x.ParseText([]byte(s)); err != nil {
			t.Fatalf("ParseText(%q): %v", s, err)
		}
		b := x.AppendNumeric(nil)
		// pgx prints the same value.
		got := numericText(t, b)
		want := string(x.AppendText(nil))
		if !sameNumber(got, want) {
			t.Fatalf("%q: pgx reads %s, we print %s", s, got, want)
		}
		// Decoding pgx's own encoding gives the same value and scale.
		var y redact.Decimal
		if err := y.ReadNumeric(encText(t, pgtype.NumericOID, want)); err != nil {
			t.Fatalf("ReadNumeric(%s): %v", want, err)
		}
		if y.Kind != x.Kind || y.Coef.Cmp(&x.Coef) != 0 {
			t.Fatalf("%s: read %s (scale %d), want %s (scale %d)", s, y.AppendText(nil), y.Scale, want, x.Scale)
		}
	}
}

func pow(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// sameNumber compares decimal texts ignoring trailing fractional zeros
// (pgx prints numerics in exponent form).
func sameNumber(a, b string) bool {
	var x, y redact.Decimal
	if x.ParseText([]byte(a)) != nil || y.ParseText([]byte(b)) != nil {
		return a == b
	}
	if x.Kind != y.Kind {
		return false
	}
	x.Round(20)
	y.Round(20)
	return x.Coef.Cmp(&y.Coef) == 0
}

func TestDecimalReadScale(t *testing.T) {
	// PostgreSQL sends numeric(10,2) 1.5 with dscale 2: "1.50".
	var x redact.Decimal
	b := []byte{0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88} // digits 1, 5000; weight 0; dscale 2
	if err := x.ReadNumeric(b); err != nil {
		t.Fatal(err)
	}
	if got := string(x.AppendText(nil)); got != "1.50" {
		t.Fatalf("got %s", got)
	}
	if got := x.AppendNumeric(nil); string(got) != string(b) {
		t.Fatalf("re-encoded %x, want %x", got, b)
	}
	for _, bad := range [][]byte{nil, {0, 1, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0x12, 0x34, 0, 0, 0, 1}, {0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10}} {
		if err := x.ReadNumeric(bad); err == nil {
			t.Errorf("ReadNumeric(%x) accepted", bad)
		}
	}
}

func TestDecimalRound(t *testing.T) {
	for _, tt := range []struct {
		in    string
		scale int
		want  string
	}{
		{"1.005", 2, "1.01"},
		{"-1.005", 2, "-1.01"},
		{"1.004", 2, "1.00"},
		{"1.5", 3, "1.500"},
		{"1250", -2, "1300"},
		{"12.5", -1, "10"},
		{"0.5", 0, "1"},
	} {
		var x redact.Decimal
		if err := x.ParseText([]byte(tt.in)); err != nil {
			t.Fatal(err)
		}
		x.Round(tt.scale)
		if got := string(x.AppendText(nil)); got != tt.want {
			t.Errorf("Round(%s, %d) = %s, want %s", tt.in, tt.scale, got, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "1.2.3", "abc", "1e", "--1", "1e999999999"} {
		var x redact.Decimal
		if err := x.ParseText([]byte(bad)); err == nil {
			t.Errorf("ParseText(%q) accepted", bad)
		}
	}
}

func TestNoiseDecimal(t *testing.T) {
	for i := range 3000 {
		d := digest(t, testKey, fmt.Sprint(i))
		for _, in := range []string{"0.00", "123.45", "-99999.99", "99999.99", "0.01", "1000000"} {
			var x, orig redact.Decimal
			x.ParseText([]byte(in))
			orig.ParseText([]byte(in))
			redact.NoiseDecimal(&x, 10, 0, 7, d)
			if x.Coef.Cmp(&orig.Coef) == 0 || x.Scale != orig.Scale {
				t.Fatalf("NoiseDecimal(%s) = %s", in, x.AppendText(nil))
			}
			if x.CoefDigits() > 7 {
				t.Fatalf("NoiseDecimal(%s) = %s exceeds numeric(7,2)", in, x.AppendText(nil))
			}
			numericText(t, x.AppendNumeric(nil))
		}
		// numeric(5,-2): multiples of 100.
		var x redact.Decimal
		x.ParseText([]byte("1200"))
		redact.NoiseDecimal(&x, 10, 2, 7, d)
		if s := string(x.AppendText(nil)); !strings.HasSuffix(s, "00") || s == "1200" {
			t.Fatalf("NoiseDecimal(1200, quantum 2) = %s", s)
		}
	}
}

func TestAppendNoisyNumber(t *testing.T) {
	var x redact.Decimal
	for i := range 500 {
		d := digest(t, testKey, fmt.Sprint(i))
		for _, lit := range []string{"42", "-7", "0", "12.50", "1e10", "-2.5E-3"} {
			got, err := redact.AppendNoisyNumber(nil, []byte(lit), 10, d, &x)
			if err != nil || string(got) == lit {
				t.Fatalf("noise(%s) = %s, %v", lit, got, err)
			}
			if strings.Contains(lit, ".") && !strings.ContainsAny(lit, "eE") && !strings.Contains(string(got), ".") {
				t.Fatalf("noise(%s) = %s lost the scale", lit, got)
			}
		}
	}
	if _, err := redact.AppendNoisyNumber(nil, []byte("abc"), 10, digest(t, testKey, "x"), &x); err == nil {
		t.Fatal("accepted a non-number")
	}
}
