package cmd

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
	"github.com/nopii/nopii/feeds/s3"
	"github.com/nopii/nopii/internal/s3test"
)

// TestAllFeedsAtOnce: one workflow with a twin, an S3 bucket (a real S3
// server) and a local folder; each table is extracted once and lands in
// all three, redacted alike; then a delta run writes delta folders.
func TestAllFeedsAtOnce(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	srv, bucket, dir, feeds := lakeFeeds(t, twinDSN, "parquet", "csv")
	cfg := writeConfig(t, workflowYAML("shop", prodDSN, `
          - name: public.customer
            updated_at: updated_at
            columns:
              email: { rule: redact_email }
              first_name: { rule: fake, kind: first_name }
              last_name: { rule: keep }
              phone: { rule: fake, kind: phone }
              date_of_birth: { rule: shift_date }
              address: { rule: destroy }
              ssn: { rule: hash }
          - name: public.orders
            columns:
              email: { rule: redact_email }
`, feeds+"        compression: gzip\n"))
	rep := runJSON(t, cfg, 0)
	for _, tr := range rep.Tables {
		if strings.Join(tr.Feeds, ",") != "twin,s3,files" || tr.Error != "" {
			t.Fatalf("%s: feeds %v error %q", tr.Table, tr.Feeds, tr.Error)
		}
	}
	twin := mustConnect(t, twinDSN)
	customer := nopii.TableName{Schema: "public", Name: "customer"}

	// The same rows, redacted the same way, in every feed.
	wantEmail := queryString(t, twin, "SELECT email::text FROM public.customer WHERE customer_id = 42")
	wantCount := queryInt(t, twin, "SELECT count(*) FROM public.customer")
	s3store := mustS3Store(t, srv, bucket)
	fstore, err := files.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*laketest.Reader{
		"s3":    laketest.NewReader(s3store, lake.Options{Workflow: "shop", Format: "parquet"}),
		"files": laketest.NewReader(fstore, lake.Options{Workflow: "shop", Format: "csv", Compression: "gzip"}),
	} {
		rows := r.Rows(t, customer)
		if int64(len(rows)) != wantCount {
			t.Errorf("%s feed: %d customer rows, twin %d", name, len(rows), wantCount)
		}
		if got := rows["42"]; len(got) < 2 || got[1] != wantEmail {
			t.Errorf("%s feed: customer 42 = %v, want email %q as in the twin", name, got, wantEmail)
		}
	}
	// Layout of SPEC §4 on disk, and no raw email anywhere in it.
	for _, p := range []string{"shop/public.customer/_manifest.json", "shop/public.orders/_manifest.json", "shop/_nopii/state.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("files feed lacks %s", p)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "shop/public.customer/snapshot=*/part-00000.csv.gz"))
	if len(parts) != 1 {
		t.Fatalf("snapshot parts: %v", parts)
	}
	assertNoRawValues(t, dir, regexp.MustCompile(`customer[0-9]+@mail\.example\.org`))

	// A delta after an update writes a delta folder to the lakes.
	mustExec(t, mustConnect(t, prodDSN), "UPDATE public.customer SET last_name = 'Changed', updated_at = now() WHERE customer_id <= 3")
	rep = runJSON(t, cfg, 0)
	// 3 changed rows, plus the row at the cursor that the overlap reads again.
	if tr := tableReport(t, rep, "public.customer"); tr.Mode != "delta" || tr.Upserted != 4 {
		t.Fatalf("delta into three feeds: %+v", tr)
	}
	deltas, _ := filepath.Glob(filepath.Join(dir, "shop/public.customer/delta=*/part-00000.csv.gz"))
	if len(deltas) != 1 {
		t.Fatalf("delta parts: %v", deltas)
	}
	r := laketest.NewReader(fstore, lake.Options{Workflow: "shop", Format: "csv", Compression: "gzip"})
	if got := r.Rows(t, customer)["2"]; len(got) < 4 || got[3] != "Changed" {
		t.Errorf("files feed after delta: customer 2 = %v", got)
	}
	assertNoRawValues(t, dir, regexp.MustCompile(`customer[0-9]+@mail\.example\.org`))
}

func mustS3Store(t *testing.T, srv *s3test.Server, bucket string) lake.Store {
	t.Helper()
	st, err := s3.NewStore(t.Context(), s3.Options{Bucket: bucket, Prefix: "lake/", Region: srv.Region, Endpoint: srv.Endpoint(),
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertNoRawValues greps every file of a lake folder, decompressed.
func assertNoRawValues(t *testing.T, dir string, needle *regexp.Regexp) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if needle.Match(b) {
			t.Errorf("%s holds a raw value (%s)", p, needle)
		}
		return nil
	})
}
