package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/s3"
	testfixture "github.com/nopii/nopii/internal/fixture"
	"github.com/nopii/nopii/internal/s3test"
)

const (
	prefix   = "lake/"
	partSize = s3.MinPartSize
)

// fixture is a store on a fresh bucket of the shared versitygw, reached
// through a recording proxy.
type fixture struct {
	srv    *s3test.Server
	bucket string
	proxy  *proxy
	store  *s3.Store
	logs   *testfixture.Buffer
}

// newFixture returns a store on a new bucket, through a proxy that injects
// faults. edit, when not nil, adjusts the options first.
func newFixture(t *testing.T, faults faultFunc, edit func(*s3.Options)) *fixture {
	t.Helper()
	srv := s3test.MustServer(t)
	f := &fixture{srv: srv, bucket: s3test.MustBucket(t), logs: &testfixture.Buffer{}}
	f.proxy = newProxy(t, srv.Endpoint(), faults)
	o := s3.Options{
		Bucket:          f.bucket,
		Prefix:          prefix,
		Region:          srv.Region,
		Endpoint:        f.proxy.URL,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		PartSize:        partSize,
		MaxBackoff:      20 * time.Millisecond, // keep retry tests fast
		Logger:          slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&o)
	}
	store, err := s3.NewStore(t.Context(), o)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	f.store = store
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("store log:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *fixture) put(t *testing.T, key string, data []byte) {
	t.Helper()
	w, err := f.store.Create(t.Context(), key)
	if err != nil {
		t.Fatalf("Create %s: %v", key, err)
	}
	if err := writeChunks(w, data); err != nil {
		t.Fatalf("Write %s: %v", key, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit %s: %v", key, err)
	}
}

func (f *fixture) get(t *testing.T, key string) []byte {
	t.Helper()
	rc, err := f.store.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func (f *fixture) list(t *testing.T, prefix string) []string {
	t.Helper()
	keys, err := f.store.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return keys
}

// assertGone checks that key has no object, through the store and in the
// bucket's raw listing.
func (f *fixture) assertGone(t *testing.T, key string) {
	t.Helper()
	rc, err := f.store.Get(t.Context(), key)
	if err == nil {
		rc.Close()
		t.Errorf("Get %s: an object exists", key)
	} else if !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Get %s: %v, want lake.ErrNotExist", key, err)
	}
	if keys := f.rawKeys(t); slices.Contains(keys, prefix+key) {
		t.Errorf("bucket lists %s: %q", prefix+key, keys)
	}
}

// rawKeys lists the whole bucket directly on the server, around the store.
func (f *fixture) rawKeys(t *testing.T) []string {
	t.Helper()
	out, err := f.srv.Client().ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: &f.bucket})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// uploads returns the keys of the bucket's multipart uploads in progress.
func (f *fixture) uploads(t *testing.T) []string {
	t.Helper()
	out, err := f.srv.Client().ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: &f.bucket})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// writeChunks writes data in uneven pieces, as an encoder would.
func writeChunks(w io.Writer, data []byte) error {
	sizes := []int{1, 7, 4096, 65537, 1 << 20, 3<<20 + 5}
	for i := 0; len(data) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, nil)
	objects := map[string][]byte{
		"wf/public.a/snapshot=20260101T000000Z/part-00000.parquet": []byte("parquet bytes"),
		"wf/public.a/_manifest.json":                               []byte(`{"snapshot":"x"}`),
		"wf/public.b/delta=20260101T000000Z/part-00000.csv":        []byte("a,b\n1,2\n"),
		"wf/public.b/empty.csv":                                    {},
		"_nopii/state.json":                                        []byte(`{}`),
		"exactly-one-part.bin":                                     randomBytes(partSize, 1),
	}
	for key, data := range objects {
		f.put(t, key, data)
	}
	for key, data := range objects {
		if got := f.get(t, key); !bytes.Equal(got, data) {
			t.Errorf("Get %s: %d bytes, want %d, equal=false", key, len(got), len(data))
		}
	}
	// An object of exactly one part still goes up in one request.
	if n := f.proxy.count(opCreateMultipart); n != 0 {
		t.Errorf("%d CreateMultipartUpload requests for objects of at most one part, want 0", n)
	}
	if n := f.proxy.count(opPutObject); n != len(objects) {
		t.Errorf("%d PutObject requests, want %d", n, len(objects))
	}

	all := slices.Sorted(func(yield func(string) bool) {
		for k := range objects {
			if !yield(k) {
				return
			}
		}
	})
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"wf/", all[2:]},
		{"wf/public.a/", all[2:4]},
		{"wf/public.a/snap", all[3:4]},
		{"wf/public.c/", nil},
		{"nothing-here/", nil},
	} {
		if got := f.list(t, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	// Keys live under the prefix in the bucket.
	raw := f.rawKeys(t)
	for _, k := range raw {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("bucket has %s, outside the prefix %s", k, prefix)
		}
	}
	if len(raw) != len(objects) {
		t.Errorf("bucket has %d objects, want %d: %q", len(raw), len(objects), raw)
	}

	// Overwrite.
	f.put(t, "_nopii/state.json", []byte(`{"v":2}`))
	if got := f.get(t, "_nopii/state.json"); string(got) != `{"v":2}` {
		t.Errorf("after overwrite, Get = %q", got)
	}

	// Delete, with a missing key among the present ones.
	if err := f.store.Delete(t.Context(), "wf/public.b/empty.csv", "never-written", "wf/public.a/_manifest.json"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := f.store.Delete(t.Context()); err != nil {
		t.Errorf("Delete of nothing: %v", err)
	}
	want := slices.DeleteFunc(slices.Clone(all), func(k string) bool {
		return k == "wf/public.b/empty.csv" || k == "wf/public.a/_manifest.json"
	})
	if got := f.list(t, ""); !slices.Equal(got, want) {
		t.Errorf("after Delete, List = %q, want %q", got, want)
	}
	f.assertGone(t, "wf/public.b/empty.csv")

	_, err := f.store.Get(t.Context(), "wf/public.a/_manifest.json")
	if !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("Get of a deleted key: %v, want lake.ErrNotExist", err)
	}
	if wantMsg := "s3://" + f.bucket + "/lake/wf/public.a/_manifest.json"; !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error %q does not name %s", err, wantMsg)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ prefix, want string }{
		{"", "s3://b"},
		{"nopii/", "s3://b/nopii"},
		{"nopii", "s3://b/nopii"},
		{"/a/b/", "s3://b/a/b"},
	} {
		s, err := s3.NewStore(t.Context(), s3.Options{Bucket: "b", Prefix: tc.prefix, Region: "eu-west-1", AccessKeyID: "k", SecretAccessKey: "s"})
		if err != nil {
			t.Fatalf("NewStore: %v", err)
		}
		if got := s.Describe(); got != tc.want {
			t.Errorf("prefix %q: Describe() = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, nil)
	s3.SetBatchSizes(f.store, 2, 3)
	var keys []string
	for i := range 7 {
		key := "t/" + string(rune('a'+i))
		keys = append(keys, key)
		f.put(t, key, []byte(key))
	}
	f.proxy.reset()
	if got := f.list(t, "t/"); !slices.Equal(got, keys) {
		t.Errorf("List = %q, want %q", got, keys)
	}
	if n := f.proxy.count(opListObjects); n != 4 {
		t.Errorf("List of 7 keys in pages of 2 took %d requests, want 4", n)
	}
	f.proxy.reset()
	if err := f.store.Delete(t.Context(), append(keys[:6:6], "t/missing")...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := f.proxy.count(opDeleteObjects); n != 3 {
		t.Errorf("Delete of 7 keys in batches of 3 took %d requests, want 3", n)
	}
	if got := f.list(t, "t/"); !slices.Equal(got, keys[6:]) {
		t.Errorf("after Delete, List = %q, want %q", got, keys[6:])
	}
}

func TestMultipart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, nil)
	const key = "wf/public.big/snapshot=20260101T000000Z/part-00000.parquet"
	data := randomBytes(3*partSize+123457, 2) // four parts, the last short

	w, err := f.store.Create(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(w, data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Three parts are up, the fourth is in memory: not an object yet.
	if got := f.list(t, "wf/"); len(got) != 0 {
		t.Errorf("before Commit, List = %q, want nothing", got)
	}
	f.assertGone(t, key)
	if got := f.uploads(t); !slices.Equal(got, []string{prefix + key}) {
		t.Errorf("before Commit, uploads in progress = %q, want the one of %s", got, key)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got := f.get(t, key)
	if !bytes.Equal(got, data) {
		t.Fatalf("Get: %d bytes, not byte-identical to the %d written", len(got), len(data))
	}
	if keys := f.list(t, "wf/"); !slices.Equal(keys, []string{key}) {
		t.Errorf("after Commit, List = %q", keys)
	}
	if up := f.uploads(t); len(up) != 0 {
		t.Errorf("after Commit, uploads in progress: %q", up)
	}
	for op, want := range map[string]int{opCreateMultipart: 1, opUploadPart: 4, opComplete: 1, opPutObject: 0, opAbort: 0} {
		if n := f.proxy.count(op); n != want {
			t.Errorf("%d %s requests, want %d", n, op, want)
		}
	}
	for i, r := range f.proxy.seen(opUploadPart) {
		if pn := r.Query.Get("partNumber"); pn != string(rune('1'+i)) {
			t.Errorf("UploadPart #%d has partNumber %s", i+1, pn)
		}
	}
	if err := w.Commit(); err == nil {
		t.Errorf("second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got := f.get(t, key); !bytes.Equal(got, data) {
		t.Errorf("Abort after Commit changed the object")
	}
}

func TestNotVisibleBeforeCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, nil)
	w, err := f.store.Create(t.Context(), "small.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(`{"rows":1}`)); err != nil {
		t.Fatal(err)
	}
	f.assertGone(t, "small.json")
	if got := f.list(t, ""); len(got) != 0 {
		t.Errorf("before Commit, List = %q", got)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := f.list(t, ""); !slices.Equal(got, []string{"small.json"}) {
		t.Errorf("after Commit, List = %q", got)
	}
}

func TestAbort(t *testing.T) {
	t.Parallel()
	t.Run("multipart", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, nil)
		w, err := f.store.Create(t.Context(), "big")
		if err != nil {
			t.Fatal(err)
		}
		if err := writeChunks(w, randomBytes(2*partSize+1, 3)); err != nil {
			t.Fatal(err)
		}
		if got := f.uploads(t); len(got) != 1 {
			t.Fatalf("uploads in progress before Abort: %q, want one", got)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		f.assertGone(t, "big")
		if got := f.uploads(t); len(got) != 0 {
			t.Errorf("uploads in progress after Abort: %q", got)
		}
		if n := f.proxy.count(opAbort); n != 1 {
			t.Errorf("%d AbortMultipartUpload requests, want 1", n)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if err := w.Commit(); err == nil {
			t.Errorf("Commit after Abort succeeded")
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Errorf("Write after Abort succeeded")
		}
		f.assertGone(t, "big")
	})
	t.Run("small", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, nil)
		w, err := f.store.Create(t.Context(), "small")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("never sent")); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		if ops := f.proxy.ops(); len(ops) != 0 {
			t.Errorf("an object that fits a part and is aborted cost requests: %q", ops)
		}
		f.assertGone(t, "small")
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, nil)
		ctx, cancel := context.WithCancel(t.Context())
		w, err := f.store.Create(ctx, "cancelled")
		if err != nil {
			t.Fatal(err)
		}
		if err := writeChunks(w, randomBytes(partSize+1, 4)); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, werr := w.Write(randomBytes(2*partSize, 5)) // sends part 2
		cerr := w.Commit()
		if werr == nil || cerr == nil || !errors.Is(cerr, context.Canceled) {
			t.Fatalf("Write, Commit after cancel: %v, %v; want context.Canceled", werr, cerr)
		}
		// The abort ran despite the cancelled context.
		if got := f.uploads(t); len(got) != 0 {
			t.Errorf("uploads in progress after a cancelled upload: %q", got)
		}
		if n := f.proxy.count(opAbort); n != 1 {
			t.Errorf("%d AbortMultipartUpload requests, want 1", n)
		}
		f.assertGone(t, "cancelled")
	})
}

func TestRetries(t *testing.T) {
	t.Parallel()
	// Every operation fails twice before it gets through: 500, then 503
	// SlowDown (throttling). Part 2 fails four times, one short of the
	// five attempts.
	faults := func(r *http.Request, op string, attempt int) *fault {
		limit := 2
		if op == opUploadPart && r.URL.Query().Get("partNumber") == "2" {
			limit = 4
		}
		switch {
		case attempt > limit:
			return nil
		case attempt%2 == 1:
			return &fault{status: http.StatusInternalServerError, code: "InternalError"}
		default:
			return &fault{status: http.StatusServiceUnavailable, code: "SlowDown"}
		}
	}
	f := newFixture(t, faults, func(o *s3.Options) { o.Retries = 5 })

	big := randomBytes(2*partSize+99, 6)
	f.put(t, "big", big)
	f.put(t, "small", []byte("small"))
	if got := f.get(t, "big"); !bytes.Equal(got, big) {
		t.Errorf("Get big: not byte-identical after retried parts")
	}
	if got := f.list(t, ""); !slices.Equal(got, []string{"big", "small"}) {
		t.Errorf("List = %q", got)
	}
	if err := f.store.Delete(t.Context(), "small"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// CreateMultipartUpload, parts 1 and 3, CompleteMultipartUpload,
	// PutObject, GetObject, ListObjectsV2, DeleteObjects: 2 faults each;
	// part 2: 4.
	if n := f.proxy.injectedFaults(); n != 8*2+4 {
		t.Errorf("%d faults injected, want %d", n, 8*2+4)
	}
	if n := f.proxy.count(opUploadPart); n != 3+3*2+2 {
		t.Errorf("%d UploadPart requests, want %d", n, 3+3*2+2)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "retrying") || !strings.Contains(logs, "SlowDown") {
		t.Errorf("retries not logged:\n%s", logs)
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	faults := func(r *http.Request, op string, attempt int) *fault {
		if op == opPutObject {
			return &fault{status: http.StatusInternalServerError, code: "InternalError"}
		}
		return nil
	}
	f := newFixture(t, faults, func(o *s3.Options) { o.Retries = 3 })
	w, err := f.store.Create(t.Context(), "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	err = w.Commit()
	if err == nil {
		t.Fatal("Commit succeeded against a server failing every PutObject")
	}
	t.Logf("Commit: %v", err)
	if want := "put s3://" + f.bucket + "/lake/doomed"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if n := f.proxy.count(opPutObject); n != 3 {
		t.Errorf("%d PutObject attempts, want 3", n)
	}
	if err2 := w.Commit(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Commit: %v, want the first error again", err2)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
	f.assertGone(t, "doomed")
}

// TestDroppedConnection cuts every upload of part 2 off half way: the
// retries run out, Commit fails, and neither an object nor an upload is
// left behind.
func TestDroppedConnection(t *testing.T) {
	t.Parallel()
	faults := func(r *http.Request, op string, attempt int) *fault {
		if op == opUploadPart && r.URL.Query().Get("partNumber") == "2" {
			return &fault{drop: true}
		}
		return nil
	}
	f := newFixture(t, faults, func(o *s3.Options) { o.Retries = 4 })
	const key = "wf/public.t/snapshot=20260101T000000Z/part-00000.csv"
	w, err := f.store.Create(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// Part 2 goes up when the first byte of part 3 arrives.
	werr := writeChunks(w, randomBytes(3*partSize, 7))
	cerr := w.Commit()
	if cerr == nil {
		t.Fatal("Commit succeeded although part 2 never arrived")
	}
	t.Logf("Write: %v\nCommit: %v", werr, cerr)
	if werr == nil || werr.Error() != cerr.Error() {
		t.Errorf("Write: %v; want it to fail with Commit's error", werr)
	}
	if want := "upload part 2 of s3://" + f.bucket + "/lake/" + key; !strings.Contains(cerr.Error(), want) {
		t.Errorf("error %q does not say %q", cerr, want)
	}
	if n := len(f.proxy.seen(opUploadPart)); n != 1+4 {
		t.Errorf("%d UploadPart requests, want part 1 and 4 attempts at part 2", n)
	}
	if n := f.proxy.count(opComplete); n != 0 {
		t.Errorf("%d CompleteMultipartUpload requests, want none", n)
	}
	if n := f.proxy.count(opAbort); n != 1 {
		t.Errorf("%d AbortMultipartUpload requests, want 1", n)
	}
	f.assertGone(t, key)
	if got := f.uploads(t); len(got) != 0 {
		t.Errorf("uploads in progress after the failed Commit: %q", got)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
}

// TestSlowAndStalledServer: a slow answer within ResponseTimeout is waited
// for; a stalled one is given up after ResponseTimeout and retried, so a
// hung server costs a retry, not a hung run.
func TestSlowAndStalledServer(t *testing.T) {
	t.Parallel()
	faults := func(r *http.Request, op string, attempt int) *fault {
		switch {
		case op == opUploadPart && r.URL.Query().Get("partNumber") == "2" && attempt == 1:
			return &fault{delay: time.Minute} // stalled
		case op == opPutObject && attempt == 1:
			return &fault{delay: 200 * time.Millisecond} // slow
		}
		return nil
	}
	f := newFixture(t, faults, func(o *s3.Options) { o.ResponseTimeout = time.Second })
	start := time.Now()
	big := randomBytes(3*partSize, 8)
	f.put(t, "big", big)
	f.put(t, "small", []byte("small"))
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("uploads took %v: the stalled request was not given up", d)
	}
	if got := f.get(t, "big"); !bytes.Equal(got, big) {
		t.Errorf("Get big: not byte-identical after the stalled part was retried")
	}
	if got := f.get(t, "small"); string(got) != "small" {
		t.Errorf("Get small = %q", got)
	}
	if n := f.proxy.count(opUploadPart); n != 3+1 {
		t.Errorf("%d UploadPart requests, want 3 and one retry of the stalled part", n)
	}
	if n := f.proxy.count(opPutObject); n != 1 {
		t.Errorf("%d PutObject requests, want 1: a slow answer within the timeout is not retried", n)
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sse, keyID string
	}{
		{config.SSEAES256, ""},
		{config.SSEKMS, "alias/nopii-test"},
	} {
		t.Run(tc.sse, func(t *testing.T) {
			t.Parallel()
			// Answer the encrypted writes here: versitygw has no KMS.
			// Recording them is the point.
			faults := func(r *http.Request, op string, attempt int) *fault {
				if op == opPutObject || op == opCreateMultipart {
					return &fault{status: http.StatusNotImplemented, code: "NotImplemented"}
				}
				return nil
			}
			f := newFixture(t, faults, func(o *s3.Options) { o.SSE, o.SSEKMSKeyID, o.Retries = tc.sse, tc.keyID, 1 })
			w, _ := f.store.Create(t.Context(), "small")
			_, _ = w.Write([]byte("x"))
			_ = w.Commit()
			w, _ = f.store.Create(t.Context(), "big")
			_ = writeChunks(w, randomBytes(partSize+1, 8))
			_ = w.Commit()

			for _, op := range []string{opPutObject, opCreateMultipart} {
				reqs := f.proxy.seen(op)
				if len(reqs) != 1 {
					t.Fatalf("%d %s requests, want 1", len(reqs), op)
				}
				h := reqs[0].Header
				if got := h.Get("X-Amz-Server-Side-Encryption"); got != tc.sse {
					t.Errorf("%s: x-amz-server-side-encryption = %q, want %q", op, got, tc.sse)
				}
				if got := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tc.keyID {
					t.Errorf("%s: x-amz-server-side-encryption-aws-kms-key-id = %q, want %q", op, got, tc.keyID)
				}
			}
		})
	}
}

// TestSSEAccepted checks that versitygw takes AES256 objects, so the option
// does not break the S3-compatible servers we test against.
func TestSSEAccepted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(o *s3.Options) { o.SSE = config.SSEAES256 })
	data := randomBytes(partSize+5, 9)
	f.put(t, "big", data)
	f.put(t, "small", []byte("small"))
	if got := f.get(t, "big"); !bytes.Equal(got, data) {
		t.Errorf("Get big: not byte-identical")
	}
	for _, op := range []string{opPutObject, opCreateMultipart} {
		for _, r := range f.proxy.seen(op) {
			if got := r.Header.Get("X-Amz-Server-Side-Encryption"); got != config.SSEAES256 {
				t.Errorf("%s without x-amz-server-side-encryption: AES256 (%q)", op, got)
			}
		}
	}
}

func TestErrorsKeepSecrets(t *testing.T) {
	t.Parallel()
	srv := s3test.MustServer(t)
	ctx := t.Context()
	const secret = "wrong-secret-Zq8xVv2mC9"
	for _, tc := range []struct {
		name   string
		bucket string
		secret string
	}{
		{"no such bucket", "no-such-bucket", srv.SecretKey},
		{"bad credentials", s3test.MustBucket(t), secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := s3.NewStore(ctx, s3.Options{
				Bucket: tc.bucket, Prefix: "p", Endpoint: srv.Endpoint(), Region: srv.Region,
				AccessKeyID: srv.AccessKey, SecretAccessKey: tc.secret, Retries: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			w, _ := s.Create(ctx, "k")
			_, _ = w.Write([]byte("x"))
			errs = append(errs, w.Commit())
			_, err = s.Get(ctx, "k")
			errs = append(errs, err)
			_, err = s.List(ctx, "")
			errs = append(errs, err)
			errs = append(errs, s.Delete(ctx, "k"))
			for i, err := range errs {
				if err == nil {
					t.Errorf("operation %d succeeded", i)
					continue
				}
				msg := err.Error()
				if !strings.Contains(msg, "s3://"+tc.bucket+"/p") {
					t.Errorf("error %q does not name the bucket", msg)
				}
				if strings.Contains(msg, tc.secret) {
					t.Errorf("error %q holds the secret access key", msg)
				}
				if errors.Is(err, lake.ErrNotExist) {
					t.Errorf("error %q is ErrNotExist: a missing bucket or bad credentials is not a missing object", msg)
				}
			}
		})
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    s3.Options
		want string
	}{
		{"no bucket", s3.Options{}, "bucket is required"},
		{"bucket with slash", s3.Options{Bucket: "a/b"}, `"a/b" is not a bucket name`},
		{"bad sse", s3.Options{Bucket: "b", SSE: "rot13"}, `sse "rot13"`},
		{"kms key without kms", s3.Options{Bucket: "b", SSE: "AES256", SSEKMSKeyID: "k"}, "needs sse aws:kms"},
		{"half credentials", s3.Options{Bucket: "b", AccessKeyID: "AKIA"}, "go together"},
		{"small parts", s3.Options{Bucket: "b", PartSize: 1 << 20}, "part size 1048576"},
		{"negative retries", s3.Options{Bucket: "b", Retries: -1}, "retries -1"},
		{"bad endpoint", s3.Options{Bucket: "b", Endpoint: "minio:9000"}, "endpoint must be"},
		{"endpoint with password", s3.Options{Bucket: "b", Endpoint: "ftp://u:hunter2@minio"}, "endpoint must be"},
	} {
		_, err := s3.NewStore(t.Context(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewStore: %v, want an error with %q", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q holds the endpoint's password", tc.name, err)
		}
	}
}

func TestPrefixAndDescribe(t *testing.T) {
	t.Parallel()
	srv := s3test.MustServer(t)
	bucket := s3test.MustBucket(t)
	store, err := s3.NewStore(t.Context(), s3.Options{Bucket: bucket, Prefix: "nopii/", Region: srv.Region, Endpoint: srv.Endpoint(),
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	if got, want := store.Describe(), "s3://"+bucket+"/nopii"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	w, err := store.Create(t.Context(), "ml/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	out, err := srv.Client().HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String("nopii/ml/x")})
	if err != nil {
		t.Fatalf("HeadObject nopii/ml/x: %v", err)
	}
	if aws.ToInt64(out.ContentLength) != 1 {
		t.Errorf("object has %d bytes, want 1", aws.ToInt64(out.ContentLength))
	}
}
