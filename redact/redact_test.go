package redact_test

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nopii/nopii/redact"
)

var testKey = []byte("test key: not a secret")

func digest(tb testing.TB, key []byte, v string) *redact.Digest {
	tb.Helper()
	var d redact.Digest
	redact.NewKeyed(key).Sum(&d, []byte(v))
	return &d
}

func TestKeyedSum(t *testing.T) {
	// RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
	d := digest(t, []byte("Jefe"), "what do ya want for nothing?")
	want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := hex.EncodeToString(d[:]); got != want {
		t.Fatalf("Sum = %s, want %s", got, want)
	}
	if got := string(d.AppendHex(nil, 64)); got != want {
		t.Fatalf("AppendHex(64) = %s", got)
	}
	if got := string(d.AppendHex([]byte("x"), 5)); got != "x5bdcc" {
		t.Fatalf("AppendHex(5) = %s", got)
	}
	if d.Uint64() != 0x5bdcc146bf60754e {
		t.Fatalf("Uint64 = %#x", d.Uint64())
	}

	k := redact.NewKeyed(testKey)
	var a, b, c redact.Digest
	k.Sum(&a, []byte("v"))
	k.Sum(&b, []byte("v"))
	k.SumN(&c, []byte("v"), 1)
	if a != b {
		t.Fatal("Sum is not deterministic")
	}
	if a == c {
		t.Fatal("SumN(1) equals Sum")
	}
	if *digest(t, []byte("other key"), "v") == a {
		t.Fatal("another key gives the same digest")
	}
	k.SumN(&b, []byte("v"), 0)
	if a != b {
		t.Fatal("SumN(0) differs from Sum")
	}
}

func TestKeyedNoAllocs(t *testing.T) {
	k := redact.NewKeyed(testKey)
	var d redact.Digest
	v := []byte("alice@example.com")
	if n := testing.AllocsPerRun(100, func() { k.Sum(&d, v); k.SumN(&d, v, 3) }); n != 0 {
		t.Fatalf("Sum allocates %v times", n)
	}
	var s redact.Source
	if n := testing.AllocsPerRun(100, func() { s.Seed(&d); _ = s.IntN(10) }); n != 0 {
		t.Fatalf("Source allocates %v times", n)
	}
}

func TestSource(t *testing.T) {
	var s1, s2 redact.Source
	d := digest(t, testKey, "x")
	s1.Seed(d)
	s2.Seed(d)
	for range 100 {
		a, b := s1.IntN(7), s2.IntN(7)
		if a != b || a < 0 || a >= 7 {
			t.Fatalf("IntN: %d, %d", a, b)
		}
		if f := s1.Float64(); f < 0 || f >= 1 {
			t.Fatalf("Float64 = %v", f)
		}
		s2.Float64()
	}
}

func enc(tb testing.TB, oid uint32, v any) []byte {
	tb.Helper()
	b, err := pgtype.NewMap().Encode(oid, pgtype.BinaryFormatCode, v, nil)
	if err != nil {
		tb.Fatalf("encode %v: %v", v, err)
	}
	return b
}

// encText encodes the text form of a value of type oid in binary, as
// PostgreSQL would send it.
func encText(tb testing.TB, oid uint32, text string) []byte {
	tb.Helper()
	m := pgtype.NewMap()
	typ, _ := m.TypeForOID(oid)
	v, err := typ.Codec.DecodeValue(m, oid, pgtype.TextFormatCode, []byte(text))
	if err != nil {
		tb.Fatalf("decode %q: %v", text, err)
	}
	return enc(tb, oid, v)
}

func TestCanonical(t *testing.T) {
	scratch := make([]byte, 0, 64)
	for _, tt := range []struct {
		name  string
		canon redact.Canon
		src   []byte
		want  string
	}{
		{"text", redact.CanonText, []byte("Ünï"), "Ünï"},
		{"bpchar", redact.CanonBpchar, []byte("ab  "), "ab"},
		{"int2", redact.CanonInt(2), enc(t, pgtype.Int2OID, int16(42)), "42"},
		{"int4", redact.CanonInt(4), enc(t, pgtype.Int4OID, int32(42)), "42"},
		{"int8", redact.CanonInt(8), enc(t, pgtype.Int8OID, int64(-42)), "-42"},
		{"uuid", redact.CanonUUID, encText(t, pgtype.UUIDOID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"date", redact.CanonDate, encText(t, pgtype.DateOID, "1999-12-31"), "1999-12-31"},
		{"date infinity", redact.CanonDate, enc(t, pgtype.DateOID, pgtype.Date{InfinityModifier: pgtype.Infinity, Valid: true}), "infinity"},
		{"timestamp", redact.CanonTimestamp, encText(t, pgtype.TimestampOID, "2024-01-31 12:34:56.5"), "2024-01-31 12:34:56.5"},
		{"timestamptz", redact.CanonTimestamptz, encText(t, pgtype.TimestamptzOID, "2024-01-31 12:34:56+02"), "2024-01-31 10:34:56+00"},
		{"timestamptz -infinity", redact.CanonTimestamptz, enc(t, pgtype.TimestamptzOID, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}), "-infinity"},
		{"raw", redact.CanonRaw("bytea"), []byte{1, 2}, "bytea\x00\x01\x02"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.canon(scratch, tt.src)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, c := range []redact.Canon{redact.CanonInt(4), redact.CanonUUID, redact.CanonDate, redact.CanonTimestamp} {
		if _, err := c(scratch, []byte{1, 2, 3}); err == nil {
			t.Fatal("bad length accepted")
		}
	}
}

func TestCanonicalNoAllocs(t *testing.T) {
	scratch := make([]byte, 0, 64)
	ts := encText(t, pgtype.TimestamptzOID, "2024-01-31 12:34:56.123+02")
	u := encText(t, pgtype.UUIDOID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	i := enc(t, pgtype.Int8OID, int64(123456789))
	if n := testing.AllocsPerRun(100, func() {
		_, _ = redact.CanonTimestamptz(scratch, ts)
		_, _ = redact.CanonUUID(scratch, u)
		_, _ = redact.CanonInt(8)(scratch, i)
	}); n != 0 {
		t.Fatalf("canonical forms allocate %v times", n)
	}
}

func TestAppendEmail(t *testing.T) {
	d := digest(t, testKey, "alice@example.org")
	got := string(redact.AppendEmail(nil, d, 16, "example.com"))
	if !strings.HasPrefix(got, "u") || !strings.HasSuffix(got, "@example.com") || len(got) != 1+16+12 {
		t.Fatalf("AppendEmail = %q", got)
	}
}

func TestAppendMask(t *testing.T) {
	for _, tt := range []struct {
		in          string
		first, last int
		mask        rune
		want        string
	}{
		{"123456789", 0, 4, '*', "*****6789"},
		{"123456789", 2, 2, '#', "12#####89"},
		{"1234", 0, 4, '*', "****"},
		{"123", 1, 4, '*', "***"},
		{"", 0, 4, '*', ""},
		{"Ünïcødé", 1, 1, '*', "Ü*****é"},
		{"abcdef", 0, 2, '█', "████ef"},
		{"abc", 0, 0, '*', "***"},
	} {
		got := string(redact.AppendMask(nil, []byte(tt.in), tt.first, tt.last, tt.mask))
		if got != tt.want {
			t.Errorf("mask(%q, %d, %d) = %q, want %q", tt.in, tt.first, tt.last, got, tt.want)
		}
		if utf8.RuneCountInString(got) != utf8.RuneCountInString(tt.in) {
			t.Errorf("mask(%q) changed the length", tt.in)
		}
	}
}

func TestTruncateAlter(t *testing.T) {
	for _, tt := range []struct {
		in           string
		chars, bytes int
		want         string
	}{
		{"héllo", 2, 0, "hé"},
		{"héllo", 0, 2, "h"},
		{"héllo", 0, 3, "hé"},
		{"héllo", 10, 10, "héllo"},
		{"héllo", 0, 0, "héllo"},
	} {
		if got := string(redact.Truncate([]byte(tt.in), tt.chars, tt.bytes)); got != tt.want {
			t.Errorf("Truncate(%q, %d, %d) = %q, want %q", tt.in, tt.chars, tt.bytes, got, tt.want)
		}
	}
	for _, in := range []string{"a", "x", "é", "abx"} {
		got := string(redact.Alter([]byte(in)))
		if got == in || utf8.RuneCountInString(got) != utf8.RuneCountInString(in) {
			t.Errorf("Alter(%q) = %q", in, got)
		}
	}
}

func TestAppendAlnum(t *testing.T) {
	var s redact.Source
	s.Seed(digest(t, testKey, "x"))
	got := redact.AppendAlnum(nil, &s, 40)
	if len(got) != 40 {
		t.Fatalf("len = %d", len(got))
	}
	for _, c := range got {
		if !strings.ContainsRune(redact.Alphanumeric, rune(c)) {
			t.Fatalf("%q is not alphanumeric", got)
		}
	}
}

func TestShift(t *testing.T) {
	for i := range 2000 {
		d := digest(t, testKey, string(rune(i)))
		for _, maxDays := range []int{1, 2, 30, 365} {
			o := redact.ShiftOffset(d, maxDays)
			if o == 0 || o < -int64(maxDays) || o > int64(maxDays) {
				t.Fatalf("ShiftOffset(%d) = %d", maxDays, o)
			}
		}
	}
	if got := redact.ShiftDate(redact.DateInfinity, 3); got != redact.DateInfinity {
		t.Fatalf("infinity moved to %d", got)
	}
	if got := redact.ShiftTimestamp(redact.TimestampNegInfinity, 3); got != redact.TimestampNegInfinity {
		t.Fatalf("-infinity moved to %d", got)
	}
	// At the end of the range the shift goes the other way.
	last := int64(2147483494 - 2451545 - 1)
	if got := redact.ShiftDate(last, 5); got != last-5 {
		t.Fatalf("ShiftDate(last, 5) = %d", got)
	}
	if !redact.DateInRange(last) || redact.DateInRange(last+1) {
		t.Fatal("DateInRange disagrees with PostgreSQL's range")
	}
}

func TestNoiseInt(t *testing.T) {
	for _, size := range []int{2, 4, 8} {
		lo, hi := redact.IntRange(size)
		for i := range 5000 {
			d := digest(t, testKey, string(rune(i))+string(rune(size)))
			vals := []int64{0, 1, -1, lo, hi, lo + 1, hi - 1, int64(i) * 6, -int64(i) * 6, hi / 3}
			for _, v := range vals {
				for _, pct := range []float64{0.5, 10, 100} {
					got := redact.NoiseInt(v, lo, hi, pct, d)
					if got == v || got < lo || got > hi {
						t.Fatalf("NoiseInt(%d, size %d, %v%%) = %d", v, size, pct, got)
					}
					diff := math.Abs(float64(got) - float64(v))
					if diff > math.Max(1, math.Abs(float64(v))*pct/100)+1e-9*math.Abs(float64(v)) {
						t.Fatalf("NoiseInt(%d, %v%%) moved by %v", v, pct, diff)
					}
				}
			}
		}
	}
}

func TestNoiseFloat(t *testing.T) {
	for i := range 5000 {
		d := digest(t, testKey, string(rune(i)))
		for _, v := range []float64{0, 1, -1, 1e-300, math.MaxFloat64, -math.MaxFloat64, 123.456, math.SmallestNonzeroFloat64} {
			got := redact.NoiseFloat(v, 8, 10, d)
			if got == v || math.IsInf(got, 0) || math.IsNaN(got) {
				t.Fatalf("NoiseFloat(%v) = %v", v, got)
			}
			if v != 0 && math.Abs(got-v) > math.Abs(v)*0.1*(1+1e-12) && math.Abs(got-v) > math.Abs(math.Nextafter(v, 0)-v) {
				t.Fatalf("NoiseFloat(%v) moved too far: %v", v, got)
			}
		}
		for _, v := range []float32{0, 1, -3.5, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32} {
			got := redact.NoiseFloat(float64(v), 4, 10, d)
			if float32(got) == v || math.IsInf(got, 0) || float64(float32(got)) != got {
				t.Fatalf("NoiseFloat32(%v) = %v", v, got)
			}
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		got := redact.NoiseFloat(v, 8, 10, digest(t, testKey, "x"))
		if !(math.IsNaN(v) && math.IsNaN(got)) && got != v {
			t.Fatalf("NoiseFloat(%v) = %v", v, got)
		}
	}
}

func TestFakeKinds(t *testing.T) {
	for _, kind := range redact.FakeKinds() {
		t.Run(kind, func(t *testing.T) {
			f1, err := redact.NewFaker(kind)
			if err != nil {
				t.Fatal(err)
			}
			f2, _ := redact.NewFaker(kind)
			seen := map[string]bool{}
			for i := range 300 {
				d := digest(t, testKey, string(rune(i)))
				a := string(f1.AppendText(nil, d))
				b := string(f2.AppendText(nil, d))
				if a != b {
					t.Fatalf("not deterministic: %q vs %q", a, b)
				}
				if a == "" || !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 {
					t.Fatalf("bad fake %q", a)
				}
				seen[a] = true
			}
			if min := 5; kind == "gender" && len(seen) < 2 || kind != "gender" && len(seen) < min {
				t.Fatalf("only %d distinct fakes", len(seen))
			}
		})
	}
	if _, err := redact.NewFaker("nope"); err == nil || !strings.Contains(err.Error(), "first_name") {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestFakeIBAN(t *testing.T) {
	f, _ := redact.NewFaker("iban")
	for i := range 500 {
		iban := string(f.AppendText(nil, digest(t, testKey, string(rune(i)))))
		// ISO 13616: move the first four characters to the end, letters to
		// numbers, the result mod 97 is 1.
		r := 0
		for _, c := range iban[4:] + iban[:4] {
			if c >= 'A' && c <= 'Z' {
				r = (r*100 + int(c-'A'+10)) % 97
			} else {
				r = (r*10 + int(c-'0')) % 97
			}
		}
		if r != 1 {
			t.Fatalf("IBAN %s fails its check", iban)
		}
	}
}

func TestFakeNoAllocs(t *testing.T) {
	d := digest(t, testKey, "x")
	buf := make([]byte, 0, 256)
	for _, kind := range []string{"first_name", "last_name", "full_name", "city", "country", "phone", "zip", "ssn", "iban", "ipv4", "ipv6", "uuid", "date_of_birth", "job_title", "company"} {
		f, _ := redact.NewFaker(kind)
		if n := testing.AllocsPerRun(100, func() { buf = f.AppendText(buf[:0], d) }); n != 0 {
			t.Errorf("fake %s allocates %v times", kind, n)
		}
	}
}

func TestInet(t *testing.T) {
	b := encText(t, pgtype.InetOID, "2001:db8::1/64")
	v, err := redact.ReadInet(b)
	if err != nil || v.Family != redact.InetFamilyV6 || v.Bits != 64 || len(v.Addr) != 16 {
		t.Fatalf("ReadInet = %+v, %v", v, err)
	}
	if got := redact.AppendInet(nil, v); !bytes.Equal(got, b) {
		t.Fatalf("AppendInet = %x, want %x", got, b)
	}
	for _, bad := range [][]byte{nil, {2, 32, 0, 4, 1}, {9, 32, 0, 4, 1, 2, 3, 4}, {2, 33, 0, 4, 1, 2, 3, 4}} {
		if _, err := redact.ReadInet(bad); err == nil {
			t.Errorf("ReadInet(%x) accepted", bad)
		}
	}
}

func TestTimeText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"2024-01-31", "2024-02-03"},
		{"2024-01-31T12:00:00Z", "2024-02-03T12:00:00Z"},
		{"2024-01-31 12:00:00.123+02:00", "2024-02-03 12:00:00.123+02:00"},
		{"2024-01-31 12:00:00", "2024-02-03 12:00:00"},
	} {
		got, err := redact.AppendShiftedDateText(nil, []byte(tt.in), 3)
		if err != nil || string(got) != tt.want {
			t.Errorf("shift(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2024-13-01", "31/01/2024", "2024-01-31 is a date"} {
		if _, err := redact.AppendShiftedDateText(nil, []byte(bad), 3); err == nil {
			t.Errorf("shift(%q) accepted", bad)
		}
	}
}
