package redact_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nopii/nopii/redact"
)

// upper is an element Func that upper-cases ASCII text and turns "null"
// into NULL.
func upper(dst, src []byte) ([]byte, bool, error) {
	if string(src) == "null" {
		return dst, true, nil
	}
	return append(dst, bytes.ToUpper(src)...), false, nil
}

func TestMapArray(t *testing.T) {
	m := pgtype.NewMap()
	for _, tt := range []struct {
		name string
		in   string
		want string
	}{
		{"1-D", "{a,b,c}", "{A,B,C}"},
		{"NULL elements", "{a,NULL,c}", "{A,NULL,C}"},
		{"element to NULL", "{a,null}", "{A,NULL}"},
		{"2-D", "{{a,b},{c,d}}", "{{A,B},{C,D}}"},
		{"3-D with NULL", "{{{a},{NULL}},{{c},{d}}}", "{{{A},{NULL}},{{C},{D}}}"},
		{"empty", "{}", "{}"},
		{"lower bound", "[0:1]={x,y}", "[0:1]={X,Y}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := encText(t, pgtype.TextArrayOID, tt.in)
			out, err := redact.MapArray([]byte("prefix"), in, upper)
			if err != nil {
				t.Fatal(err)
			}
			if string(out[:6]) != "prefix" {
				t.Fatal("dst prefix lost")
			}
			var arr pgtype.Array[pgtype.Text]
			if err := m.Scan(pgtype.TextArrayOID, pgtype.BinaryFormatCode, out[6:], &arr); err != nil {
				t.Fatalf("pgx rejects the output: %v", err)
			}
			want := encText(t, pgtype.TextArrayOID, tt.want)
			if !bytes.Equal(out[6:], want) {
				t.Fatalf("got %x\nwant %x", out[6:], want)
			}
		})
	}
}

func TestMapArrayInvalid(t *testing.T) {
	good := encText(t, pgtype.Int4ArrayOID, "{1,2,3}")
	cases := map[string][]byte{
		"short":          good[:8],
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"too many dims":  {0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 23},
		"negative dim":   {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1},
		"huge dims":      {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 23, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1},
		"bad flags":      {0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 23},
		"element length": {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := redact.MapArray([]byte("x"), in, upper)
			if !errors.Is(err, redact.ErrInvalidValue) {
				t.Fatalf("err = %v", err)
			}
			if string(out) != "x" {
				t.Fatalf("dst not restored: %q", out)
			}
		})
	}
	fail := func(dst, src []byte) ([]byte, bool, error) { return dst, false, errors.New("boom") }
	if _, err := redact.MapArray(nil, good, fail); err == nil {
		t.Fatal("element error lost")
	}
}

func TestAppendArray(t *testing.T) {
	b := redact.AppendArray(nil, pgtype.TextOID, [][]byte{[]byte("a"), nil, []byte("c")})
	if want := encText(t, pgtype.TextArrayOID, "{a,NULL,c}"); !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	// PostgreSQL sends '{}' with no dimensions (pgx uses one of length 0).
	empty := redact.AppendArray(nil, pgtype.TextOID, nil)
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25}; !bytes.Equal(empty, want) {
		t.Fatalf("empty array %x, want %x", empty, want)
	}
	var arr []string
	if err := pgtype.NewMap().Scan(pgtype.TextArrayOID, pgtype.BinaryFormatCode, empty, &arr); err != nil || arr == nil || len(arr) != 0 {
		t.Fatalf("pgx reads the empty array as %v, %v", arr, err)
	}
}

func FuzzMapArray(f *testing.F) {
	f.Add(encText(f, pgtype.TextArrayOID, "{{a,NULL},{c,d}}"))
	f.Add(encText(f, pgtype.Int4ArrayOID, "{1,2,3}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := redact.MapArray(nil, in, upper)
		if err != nil {
			if !errors.Is(err, redact.ErrInvalidValue) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// A valid array maps to one of the same shape.
		if _, err := redact.MapArray(nil, out, upper); err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
	})
}
