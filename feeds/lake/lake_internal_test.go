package lake

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"

	"github.com/nopii/nopii"
)

var quiet = slog.New(slog.DiscardHandler)

var (
	int4T = &nopii.Type{OID: pgtype.Int4OID, Schema: "pg_catalog", Name: "int4", SQL: "integer"}
	int8T = &nopii.Type{OID: pgtype.Int8OID, Schema: "pg_catalog", Name: "int8", SQL: "bigint"}
	textT = &nopii.Type{OID: pgtype.TextOID, Schema: "pg_catalog", Name: "text", SQL: "text"}
)

// smallTable has an int8 id and a text column.
func smallTable(name string) *nopii.Table {
	return &nopii.Table{Name: nopii.TableName{Schema: "public", Name: name}, PrimaryKey: []string{"id"},
		Columns: []nopii.Column{
			{Name: "id", Type: int8T, Typmod: -1, TypeSQL: "bigint", NotNull: true},
			{Name: "v", Type: textT, Typmod: -1, TypeSQL: "text"},
		}}
}

func target(t *nopii.Table) nopii.Target {
	return nopii.Target{Table: t, Name: t.Name, State: &nopii.TableState{Workflow: "wf", Input: "in", Table: t.Name, Mode: "full"}}
}

func row(id int64, v string) [][]byte {
	return [][]byte{binary.BigEndian.AppendUint64(nil, uint64(id)), []byte(v), []byte(fmt.Sprint(id))}
}

func newTestFeed(st Store, o Options) *Feed {
	if o.Workflow == "" {
		o.Workflow = "wf"
	}
	o.Logger = quiet
	return New(st, o)
}

func fullCopy(t *testing.T, f *Feed, tb *nopii.Table, ids ...int64) {
	t.Helper()
	ctx := context.Background()
	l, err := f.FullCopy(ctx, target(tb))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	for _, id := range ids {
		if err := l.WriteRow(row(id, strings.Repeat("v", 50))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// readKeys returns the key list the table's manifest names.
func readKeys(t *testing.T, st Store, m *Manifest) []string {
	t.Helper()
	r, err := openKeys(context.Background(), st, m.Keys)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	var out []string
	for {
		k, err := r.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return out
		}
		out = append(out, string(k))
	}
}

func mustManifest(t *testing.T, st Store, tb *nopii.Table) *Manifest {
	t.Helper()
	m, err := ReadManifest(context.Background(), st, TableDir("wf", tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecimal(t *testing.T) {
	m := pgtype.NewMap()
	for _, c := range []struct {
		in          string
		prec, scale int
		want        string // unscaled; "" for NULL; "error" for an error
	}{
		{"12.50", 12, 2, "1250"},
		{"12.5", 12, 2, "1250"},
		{"-0.01", 5, 2, "-1"},
		{"0", 1, 0, "0"},
		{"123.456", 5, 2, "12346"},
		{"-123.455", 6, 2, "-12346"},
		{"-123.454", 6, 2, "-12345"},
		{"999999999", 9, 0, "999999999"},
		{"-999999999999999999", 18, 0, "-999999999999999999"},
		{"99999999999999999999999999999999999999", 38, 0, "99999999999999999999999999999999999999"},
		{"-99999999999999999999999999999999999999", 38, 0, "-99999999999999999999999999999999999999"},
		{"-1234567890123456789012345.67891", 30, 5, "-123456789012345678901234567891"},
		{"0.00001", 20, 10, "100000"},
		{"10000", 19, 0, "10000"},
		{"1000", 3, 0, "error"},
		{"NaN", 10, 2, ""},
	} {
		var n pgtype.Numeric
		if err := n.Scan(c.in); err != nil {
			t.Fatal(err)
		}
		bin, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		cd := &codec{kind: kNumeric, name: "numeric", precision: c.prec, scale: c.scale}
		v, _, null, err := parquetValue(nil, cd, bin, m)
		switch {
		case c.want == "error":
			if err == nil || strings.Contains(err.Error(), c.in) {
				t.Errorf("%s as numeric(%d,%d): error %v, want one without the value", c.in, c.prec, c.scale, err)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", c.in, err)
			continue
		case c.want == "":
			if !null {
				t.Errorf("%s: not NULL", c.in)
			}
			continue
		}
		var got big.Int
		switch {
		case c.prec <= 9:
			got.SetInt64(int64(v.Int32()))
			if v.Kind() != parquet.Int32 {
				t.Errorf("%s: kind %s", c.in, v.Kind())
			}
		case c.prec <= 18:
			got.SetInt64(v.Int64())
			if v.Kind() != parquet.Int64 {
				t.Errorf("%s: kind %s", c.in, v.Kind())
			}
		default:
			b := v.ByteArray()
			if len(b) != decimalSize(c.prec) {
				t.Errorf("%s: %d bytes, want %d", c.in, len(b), decimalSize(c.prec))
			}
			got.SetBytes(b)
			if b[0]&0x80 != 0 {
				got.Sub(&got, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
			}
		}
		if got.String() != c.want {
			t.Errorf("%s as numeric(%d,%d) = %s, want %s", c.in, c.prec, c.scale, got.String(), c.want)
		}
	}
	for p, want := range map[int]int{19: 9, 20: 9, 21: 9, 22: 10, 28: 12, 30: 13, 38: 16} {
		if got := decimalSize(p); got != want {
			t.Errorf("decimalSize(%d) = %d, want %d", p, got, want)
		}
	}
}

// TestTimestampRange: PostgreSQL's timestamps go on 29 years past what INT64
// microseconds since 1970 hold; those are written NULL (and counted), not
// wrapped around to negative years, and ±infinity keep their sentinels.
func TestTimestampRange(t *testing.T) {
	m := pgtype.NewMap()
	last := time.UnixMicro(math.MaxInt64 - 1).UTC() // 294247-01-10 04:00:54.775806
	for _, c := range []struct {
		in   string
		want int64 // microseconds since 1970
		null bool
	}{
		{"2000-01-01 00:00:00", pgEpochMicros, false},
		{"1969-12-31 23:59:59.999999", -1, false},
		{last.Format("2006-01-02 15:04:05.999999"), math.MaxInt64 - 1, false},
		{"294247-01-10 04:00:54.775807", 0, true}, // would be +infinity's sentinel
		{"294276-12-31 23:59:59.999999", 0, true}, // PostgreSQL's last
		{"infinity", math.MaxInt64, false},
		{"-infinity", math.MinInt64, false},
	} {
		var us int64
		switch c.in {
		case "infinity":
			us = math.MaxInt64
		case "-infinity":
			us = math.MinInt64
		default:
			// Microseconds since 2000 as PostgreSQL sends them, computed
			// apart from time.Time, which cannot reach year 294276.
			var y, mo, d, h, mi, s, frac int64
			whole, fracText, _ := strings.Cut(c.in, ".")
			if _, err := fmt.Sscanf(whole, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s); err != nil {
				t.Fatalf("%s: %v", c.in, err)
			}
			if fracText != "" {
				if _, err := fmt.Sscanf((fracText + "00000")[:6], "%d", &frac); err != nil {
					t.Fatalf("%s: %v", c.in, err)
				}
			}
			us = (daysFromCivil(y, mo, d)-pgEpochDays)*86400e6 + ((h*60+mi)*60+s)*1e6 + frac
		}
		bin := binary.BigEndian.AppendUint64(nil, uint64(us))
		for _, k := range []kind{kTimestamp, kTimestamptz} {
			cd := &codec{kind: k, name: "ts"}
			v, _, null, err := parquetValue(nil, cd, bin, m)
			switch {
			case err != nil:
				t.Errorf("%s: %v", c.in, err)
			case null != c.null:
				t.Errorf("%s: NULL %t, want %t", c.in, null, c.null)
			case !c.null && v.Int64() != c.want:
				t.Errorf("%s = %d µs since 1970, want %d", c.in, v.Int64(), c.want)
			}
		}
	}
}

// daysFromCivil is the number of days from 1970-01-01 to a proleptic
// Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func TestKeySorterSpills(t *testing.T) {
	defer func(n int) { sortBufferBytes = n }(sortBufferBytes)
	sortBufferBytes = 256
	dir := t.TempDir()
	s := &keySorter{dir: dir}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]bool{}
	for i := range 5000 {
		k := fmt.Sprintf("k%d", rng.IntN(3000))
		switch i % 500 {
		case 0:
			k = ""
		case 1:
			k = "line\nbreak\\"
		}
		want[k] = true
		if err := s.add([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.runs) < 10 {
		t.Fatalf("%d runs: the sort did not spill", len(s.runs))
	}
	var got []string
	st := s.stream()
	for {
		k, err := st.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(k))
	}
	wantList := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(got, wantList) {
		t.Fatalf("merged %d keys, want %d sorted unique", len(got), len(wantList))
	}
	s.close()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("close left %d files", len(left))
	}
}

func TestKeysObjectRoundTrip(t *testing.T) {
	st := newMemStore()
	keys := []string{"", "\\", "\\n", "\n", "a", "a\nb", "b\\\\c", strings.Repeat("long", 40000), "é"}
	slices.Sort(keys)
	w, err := newKeysWriter(context.Background(), st, "k.gz")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := w.write([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.write([]byte("a")); err == nil || strings.Contains(err.Error(), "a") && !strings.Contains(err.Error(), "order") {
		t.Errorf("a key out of order: %v", err)
	}
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	got := readKeys(t, st, &Manifest{Keys: "k.gz"})
	if !slices.Equal(got, keys) {
		t.Errorf("read back %q, want %q", got, keys)
	}
}

func TestDeltaWithSpilledKeys(t *testing.T) {
	defer func(n int) { sortBufferBytes = n }(sortBufferBytes)
	sortBufferBytes = 512
	st := newMemStore()
	f := newTestFeed(st, Options{Format: FormatCSV, PartSize: 4 << 10, TempDir: t.TempDir()})
	tb := smallTable("big")
	var ids []int64
	for i := range 3000 {
		ids = append(ids, int64(i))
	}
	fullCopy(t, f, tb, ids...)
	ctx := context.Background()
	d, err := f.Delta(ctx, target(tb), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{5000, 1} { // a new row, a changed one
		if err := d.WriteRow(row(id, "new")); err != nil {
			t.Fatal(err)
		}
	}
	var remain []string
	for _, id := range append(ids, 5000) {
		if id%3 != 0 || id == 5000 {
			remain = append(remain, fmt.Sprint(id))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(remain), func(i, j int) { remain[i], remain[j] = remain[j], remain[i] })
	for _, k := range remain {
		if err := d.WriteKey([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	up, del := d.(*deltaLoad).Applied()
	if up != 2 || del != 1000 {
		t.Errorf("Applied() = %d, %d; want 2, 1000", up, del)
	}
	m := mustManifest(t, st, tb)
	if len(m.Deltas) != 1 || m.Deltas[0].Deletes != 1000 || m.Deltas[0].Upserts != 2 || len(m.Deltas[0].Parts) < 2 {
		t.Errorf("manifest deltas %+v", m.Deltas)
	}
	slices.Sort(remain)
	if got := readKeys(t, st, m); !slices.Equal(got, remain) {
		t.Errorf("key list has %d keys, want %d", len(got), len(remain))
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	st := newMemStore()
	f := newTestFeed(st, Options{PartSize: 1 << 10})
	tb := smallTable("t")
	fullCopy(t, f, tb, 1, 2, 3)
	before := st.keys()
	ctx := context.Background()
	l, err := f.FullCopy(ctx, target(tb))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if err := l.WriteRow(row(int64(i), strings.Repeat("x", 100))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(st.keys()); n <= len(before) {
		t.Fatalf("no part was committed before the abort (%d objects): the test proves nothing", n)
	}
	l.Abort()
	if after := st.keys(); !slices.Equal(after, before) {
		t.Errorf("after Abort the store holds %q, want %q", after, before)
	}
	if st.open != 0 {
		t.Errorf("%d objects left open", st.open)
	}
}

func TestCommitFailureKeepsPrevious(t *testing.T) {
	for _, fail := range []string{"part-00003", ".keys.gz", ManifestName} {
		t.Run(fail, func(t *testing.T) {
			st := newMemStore()
			f := newTestFeed(st, Options{PartSize: 1 << 10, Format: FormatJSONL})
			tb := smallTable("t")
			fullCopy(t, f, tb, 1, 2, 3)
			before := st.keys()
			m0 := mustManifest(t, st, tb)
			st.failCommit = fail
			ctx := context.Background()
			l, err := f.FullCopy(ctx, target(tb))
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for i := 0; i < 500 && werr == nil; i++ {
				werr = l.WriteRow(row(int64(i), strings.Repeat("x", 100)))
			}
			err = l.Commit(ctx)
			if werr == nil && err == nil {
				t.Fatal("the load succeeded despite a failed object")
			}
			if e := errors.Join(werr, err); !errors.Is(e, errInjected) {
				t.Errorf("error %v does not wrap the store's", e)
			}
			st.failCommit = ""
			if after := st.keys(); !slices.Equal(after, before) {
				t.Errorf("after the failure the store holds %q, want %q", after, before)
			}
			if m := mustManifest(t, st, tb); m.Snapshot.Path != m0.Snapshot.Path {
				t.Errorf("manifest names %s, want the previous %s", m.Snapshot.Path, m0.Snapshot.Path)
			}
			fullCopy(t, f, tb, 7) // the table is not left busy
		})
	}
}

func TestRetainPrunes(t *testing.T) {
	st := newMemStore()
	f := newTestFeed(st, Options{Retain: 2})
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	f.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	tb := smallTable("t")
	ctx := context.Background()
	var snaps, deltas []string
	for i := range 4 {
		fullCopy(t, f, tb, int64(i))
		snaps = append(snaps, mustManifest(t, st, tb).Snapshot.Path)
		d, err := f.Delta(ctx, target(tb), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteRow(row(int64(100+i), "d")); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, mustManifest(t, st, tb).Deltas[0].Path)
	}
	folders := map[string]bool{}
	for _, k := range st.keys() {
		if rest, ok := strings.CutPrefix(k, "wf/public.t/"); ok {
			if folder, _, ok := strings.Cut(rest, "/"); ok {
				folders[folder] = true
			}
		}
	}
	// Kept: the last two snapshots and the deltas after the older of them.
	want := []string{snaps[2], snaps[3], deltas[2], deltas[3]}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range folders {
			if !yield(k) {
				return
			}
		}
	})
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("folders %q, want %q", got, want)
	}
	keys, _ := st.List(ctx, "wf/_nopii/keys/")
	if m := mustManifest(t, st, tb); len(keys) != 1 || keys[0] != m.Keys {
		t.Errorf("key lists %q, want only the manifest's %s", keys, m.Keys)
	}
}

func TestStampsIncrease(t *testing.T) {
	st := newMemStore()
	f := newTestFeed(st, Options{})
	fixed := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	f.now = func() time.Time { return fixed }
	tb := smallTable("t")
	ctx := context.Background()
	fullCopy(t, f, tb, 1)
	var paths []string
	for i := range 3 {
		d, err := f.Delta(ctx, target(tb), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteRow(row(int64(i), "x")); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m := mustManifest(t, st, tb)
	paths = append(paths, m.Snapshot.Path)
	for _, d := range m.Deltas {
		paths = append(paths, d.Path)
	}
	want := []string{"snapshot=20240102T030405Z", "delta=20240102T030406Z", "delta=20240102T030407Z", "delta=20240102T030408Z"}
	if !slices.Equal(paths, want) {
		t.Errorf("folders %q, want %q", paths, want)
	}
	// A folder left by a crashed load is not reused.
	st.objects["wf/public.t/snapshot=20240102T030409Z/part-00000.parquet"] = []byte("junk")
	fullCopy(t, f, tb, 1)
	if got := mustManifest(t, st, tb).Snapshot.Path; got != "snapshot=20240102T030410Z" {
		t.Errorf("snapshot %s, want the second after the crashed load's", got)
	}
}

func TestMalformedValueFailsLoad(t *testing.T) {
	st := newMemStore()
	f := newTestFeed(st, Options{Format: FormatCSV})
	tb := smallTable("t")
	tb.Columns = append(tb.Columns, nopii.Column{Name: "n", Type: int4T, Typmod: -1, TypeSQL: "integer"})
	ctx := context.Background()
	l, err := f.FullCopy(ctx, target(tb))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte{0x53, 0x45, 0x43} // "SEC"
	err = l.WriteRow([][]byte{binary.BigEndian.AppendUint64(nil, 1), []byte("x"), secret, []byte("1")})
	if err == nil || !strings.Contains(err.Error(), "int4: malformed binary value") || strings.Contains(err.Error(), "SEC") || strings.Contains(err.Error(), "534543") {
		t.Fatalf("WriteRow error %v: want one that names the type and not the value", err)
	}
	if err := l.Commit(ctx); err == nil {
		t.Error("Commit after a failed write succeeded")
	}
	if keys := st.keys(); len(keys) != 0 {
		t.Errorf("a failed load left %q", keys)
	}
	if err := l.WriteRow(row(1, "x")); err == nil {
		t.Error("WriteRow after the load ended succeeded")
	}
	// Wrong shapes of rows.
	l, _ = f.FullCopy(ctx, target(smallTable("u")))
	defer l.Abort()
	if err := l.WriteRow([][]byte{nil, nil}); err == nil {
		t.Error("a row of 2 values for 2 columns and the key was accepted")
	}
	if err := l.WriteRow([][]byte{nil, nil, nil}); err == nil {
		t.Error("a row without a key was accepted")
	}
}

func TestOptionsAndPreconditions(t *testing.T) {
	ctx := context.Background()
	tb := smallTable("t")
	for _, o := range []Options{
		{Workflow: ""}, {Workflow: "a/b"}, {Workflow: "w", Format: "avro"},
		{Workflow: "w", Format: FormatCSV, Compression: CompressionSnappy}, {Workflow: "w", Compression: "lz4"},
	} {
		o.Logger = quiet
		f := New(newMemStore(), o)
		if err := f.Prepare(ctx, nil); err == nil {
			t.Errorf("%+v: Prepare accepted the options", o)
		}
		if _, err := f.FullCopy(ctx, target(tb)); err == nil {
			t.Errorf("%+v: FullCopy accepted the options", o)
		}
	}
	f := newTestFeed(newMemStore(), Options{Kind: "files"})
	if f.Kind() != "files" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	if _, err := f.Delta(ctx, target(tb), false); err == nil || !strings.Contains(err.Error(), "full copy first") {
		t.Errorf("Delta without a snapshot: %v", err)
	}
	fullCopy(t, f, tb, 1)
	changed := smallTable("t")
	changed.Columns[1].TypeSQL = "character varying(10)"
	if _, err := f.Delta(ctx, target(changed), false); err == nil || !strings.Contains(err.Error(), "columns differ") {
		t.Errorf("Delta with other columns: %v", err)
	}
	clash := smallTable("c")
	clash.Columns[1].Name = nopii.SourcePrimaryKeyColumn
	if _, err := f.FullCopy(ctx, target(clash)); err == nil {
		t.Error("a column named source_primary_key was accepted")
	}
	// One load per table at a time.
	l, err := f.FullCopy(ctx, target(tb))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.FullCopy(ctx, target(tb)); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Errorf("a second load of the same table: %v", err)
	}
	d, err := f.Delta(ctx, target(smallTable("other")), false)
	if err == nil {
		d.Abort()
		t.Error("Delta of a table without snapshot succeeded")
	}
	l.Abort()
	if _, err := f.Delta(ctx, target(tb), false); err != nil {
		t.Errorf("after Abort the table stays busy: %v", err)
	}
}

func TestConcurrentCommitsKeepEveryState(t *testing.T) {
	st := newMemStore()
	f := newTestFeed(st, Options{Format: FormatCSV})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			tb := smallTable(fmt.Sprintf("t%d", i))
			l, err := f.FullCopy(context.Background(), target(tb))
			if err != nil {
				t.Error(err)
				return
			}
			for j := range 100 {
				l.WriteRow(row(int64(j), "x"))
			}
			if err := l.Commit(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		name := nopii.TableName{Schema: "public", Name: fmt.Sprintf("t%d", i)}
		s, err := f.State(context.Background(), nopii.StateKey{Workflow: "wf", Input: "in", Table: name})
		if err != nil || s == nil || s.Table != name {
			t.Errorf("state of %s: %+v, %v", name, s, err)
		}
	}
	// State is nil once the manifest is gone.
	st.Delete(context.Background(), TableDir("wf", nopii.TableName{Schema: "public", Name: "t3"})+ManifestName)
	if s, err := f.State(context.Background(), nopii.StateKey{Workflow: "wf", Input: "in", Table: nopii.TableName{Schema: "public", Name: "t3"}}); s != nil || err != nil {
		t.Errorf("state without manifest: %+v, %v", s, err)
	}
}

func TestTableDirEscapes(t *testing.T) {
	for in, want := range map[nopii.TableName]string{
		{Schema: "public", Name: "customer"}:  "wf/public.customer/",
		{Schema: "a/b", Name: "x%y"}:          "wf/a%2Fb.x%25y/",
		{Schema: "s", Name: "new\nline\\ é"}:  "wf/s.new%0Aline%5C é/",
		{Schema: "Mixed Case", Name: "t.dot"}: "wf/Mixed Case.t.dot/",
	} {
		if got := TableDir("wf", in); got != want {
			t.Errorf("TableDir(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVFieldQuoting(t *testing.T) {
	var buf bytes.Buffer
	sink, _ := newTextSink(&buf, CompressionNone)
	e := &csvEncoder{textSink: sink}
	for _, v := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\r", " lead"} {
		e.field([]byte(v))
		e.WriteByte('|')
	}
	sink.close()
	want := `""|plain|"a,b"|"say ""hi"""|"two` + "\n" + `lines"|"cr` + "\r" + `"| lead|`
	if buf.String() != want {
		t.Errorf("fields %q, want %q", buf.String(), want)
	}
}
