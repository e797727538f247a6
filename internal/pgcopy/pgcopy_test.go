package pgcopy_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/nopii/nopii/internal/pgcopy"
)

func stream(rows [][][]byte) []byte {
	b := pgcopy.AppendHeader(nil)
	for _, r := range rows {
		b = pgcopy.AppendRow(b, r)
	}
	return pgcopy.AppendTrailer(b)
}

func TestDecoderChunking(t *testing.T) {
	rows := [][][]byte{
		{[]byte("1"), []byte("alice@example.com"), nil},
		{[]byte("2"), []byte{}, []byte("x")},
		{[]byte("3"), bytes.Repeat([]byte("y"), 300), nil},
	}
	s := stream(rows)
	for _, chunk := range []int{1, 2, 3, 7, 19, 64, len(s)} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			var got [][][]byte
			d := pgcopy.NewDecoder(3, func(v [][]byte) error {
				r := make([][]byte, len(v))
				for i, x := range v {
					if x != nil {
						r[i] = append([]byte{}, x...)
					}
				}
				got = append(got, r)
				return nil
			})
			for i := 0; i < len(s); i += chunk {
				j := min(i+chunk, len(s))
				if _, err := d.Write(s[i:j]); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(rows) {
				t.Fatalf("got %d rows, want %d", len(got), len(rows))
			}
			for i := range rows {
				for c := range rows[i] {
					if (rows[i][c] == nil) != (got[i][c] == nil) || !bytes.Equal(rows[i][c], got[i][c]) {
						t.Fatalf("row %d col %d: got %q want %q", i, c, got[i][c], rows[i][c])
					}
				}
			}
			if d.Bytes() != int64(len(s)) {
				t.Fatalf("Bytes = %d, want %d", d.Bytes(), len(s))
			}
		})
	}
}

func TestDecoderErrors(t *testing.T) {
	s := stream([][][]byte{{[]byte("a")}})
	tests := []struct {
		name  string
		ncols int
		data  []byte
		want  string
	}{
		{"bad signature", 1, append([]byte("PGCOPY\n\xff\r\n\x01"), s[11:]...), "bad signature"},
		{"wrong width", 2, s, "tuple has 1 fields, want 2"},
		{"truncated", 1, s[:len(s)-3], pgcopy.ErrTruncated.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pgcopy.NewDecoder(tt.ncols, func([][]byte) error { return nil })
			_, err := d.Write(tt.data)
			if err == nil {
				err = d.Close()
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	boom := errors.New("boom")
	d := pgcopy.NewDecoder(1, func([][]byte) error { return boom })
	if _, err := d.Write(s); !errors.Is(err, boom) {
		t.Fatalf("row error not returned: %v", err)
	}
}

func BenchmarkDecode(b *testing.B) {
	row := [][]byte{make([]byte, 8), []byte("someone@example.com"), []byte("Some Body"), make([]byte, 200)}
	s := pgcopy.AppendHeader(nil)
	var msgs [][]byte
	msgs = append(msgs, s)
	for i := 0; i < 1000; i++ {
		msgs = append(msgs, pgcopy.AppendRow(nil, row))
	}
	msgs = append(msgs, pgcopy.AppendTrailer(nil))
	b.ReportAllocs()
	for b.Loop() {
		d := pgcopy.NewDecoder(4, func([][]byte) error { return nil })
		for _, m := range msgs {
			d.Write(m)
		}
	}
}
