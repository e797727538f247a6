package dashboard_test

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/dashboard"
	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
)

// TestWireRoundTrip posts every message of package wire with the agent's
// own Reporter to a real dashboard over a real PostgreSQL store, reads
// each back from the read API and compares it whole: every field of the
// fixtures is set (allSet checks, so a field added to wire and not carried
// through the dashboard fails here), and the decoded value must be
// reflect.DeepEqual to what was posted.
func TestWireRoundTrip(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	next, last := at("2030-01-02T00:00:00.123456Z"), at("2029-12-31T23:59:58.654321Z")
	hb := wire.Heartbeat{
		Agent: "prod-eu-1", Version: "v1.2.3", IntervalSeconds: 15, ConfigError: "nopii.yaml:3:1: unknown key",
		Workflows: []wire.WorkflowStatus{{
			Name: "stream", Schedule: "0 * * * *", NextRun: &next, LastRun: &last, LastResult: wire.StatusFailed,
			CDCLagBytes: 123456, CDCLagSeconds: 1.5,
			Inputs: []wire.InputStatus{{Name: "prod", CDCLagBytes: 123456, CDCLagSeconds: 1.5, SlotRetainedBytes: 9 << 20, SlotWALWarnBytes: 1 << 30}},
		}},
	}
	finding := scanner.ColumnFinding{
		Schema: "public", Table: "customer", Column: "profile", Type: "jsonb", Kind: "json", Confidence: 0.9,
		Evidence: "paths hold email", Rule: map[string]any{"rule": "json", "paths": map[string]any{"$.email": map[string]any{"rule": "redact_email"}}},
		Paths:    []scanner.PathFinding{{Path: "$.email", Kind: "email", Confidence: 0.95, Evidence: "98% look like email"}},
		RuleYAML: "{ rule: json }", // not on the wire (json:"-")
	}
	job := wire.Job{
		JobID: "0b7f7c1e-3a52-4c1b-9a51-5c8d3c4c2f10", Agent: "prod-eu-1",
		Report: wire.Report{
			Workflow: "stream", Status: wire.StatusFailed, StartedAt: at("2029-12-31T23:00:00.000001Z"), FinishedAt: at("2029-12-31T23:01:30.5Z"),
			Seconds: 90.5, Error: "one table failed",
			Tables: []wire.TableReport{{
				Input: "prod", Table: "public.customer", Target: "crm.customer", Mode: wire.ModeDelta, Outcome: wire.OutcomeGuarded,
				Reason: "delta from cursor updated_at", DriftForced: true, Note: "a note", Rows: 1000, Upserted: 900, Deleted: 100,
				Forgotten: 3, Refetched: 4, Warnings: []string{"no index on updated_at"}, Schema: []string{"foreign key orders_user_fkey: NOT VALID (public.users is windowed)"}, Bytes: 1 << 20, Streams: 2, Seconds: 1.25,
				RowsPerSec: 800, Redacted: []string{"email"}, Feeds: []string{"twin", "lake"}, Error: "guard: profile has no rule",
				Unclassified: []scanner.ColumnFinding{finding}, KeysStreamed: 17,
			}},
		},
	}
	scan := wire.ScanReport{Agent: "prod-eu-1", Findings: []scanner.ColumnFinding{finding}, Source: wire.ScanByScan, Schemas: []string{"public", "crm_*"}}
	for name, v := range map[string]any{"heartbeat": hb, "job": job, "scan": scan} {
		if path := allSet(reflect.ValueOf(v), name); path != "" {
			t.Fatalf("fixture field %s is zero: set it, so that the round trip covers it", path)
		}
	}

	var failures int
	r := agent.NewReporter(e.srv.URL, tok, slog.New(slog.DiscardHandler), func() { failures++ })
	r.Heartbeat(hb)
	r.Job(job)
	r.Scan(scan)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.Close(ctx)
	if failures != 0 || r.Dropped() != 0 {
		t.Fatalf("reporter: %d failed posts, %d dropped", failures, r.Dropped())
	}

	agents := decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil))
	if len(agents) != 1 {
		t.Fatalf("agents = %+v", agents)
	}
	a := agents[0]
	gotHB := wire.Heartbeat{Agent: a.Name, Version: a.Version, IntervalSeconds: a.IntervalSeconds, Workflows: a.Workflows, ConfigError: a.ConfigError}
	if !reflect.DeepEqual(gotHB, hb) {
		t.Errorf("heartbeat read back\n%+v\nwant\n%+v", gotHB, hb)
	}

	want := job
	want.Tables = []wire.TableReport{job.Tables[0]}
	want.Tables[0].Unclassified = []scanner.ColumnFinding{finding}
	want.Tables[0].Unclassified[0].RuleYAML = ""
	gotJob := decodeJSON[wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs/"+job.JobID, adminToken, nil))
	if !reflect.DeepEqual(gotJob, want) {
		t.Errorf("job read back\n%+v\nwant\n%+v", gotJob, want)
	}
	if jobs := decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs", adminToken, nil)); len(jobs) != 1 || !reflect.DeepEqual(jobs[0], want) {
		t.Errorf("GET /api/v1/jobs = %+v, want the job", jobs)
	}

	scans := decodeJSON[[]dashboard.Scan](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/scans", adminToken, nil))
	if len(scans) != 1 {
		t.Fatalf("scans = %+v", scans)
	}
	wantScan := scan
	wantScan.Findings = []scanner.ColumnFinding{finding}
	wantScan.Findings[0].RuleYAML = ""
	gotScan := wire.ScanReport{Agent: scans[0].Agent, Findings: scans[0].Findings, Source: scans[0].Source, Schemas: scans[0].Schemas}
	if !reflect.DeepEqual(gotScan, wantScan) {
		t.Errorf("scan read back\n%+v\nwant\n%+v", gotScan, wantScan)
	}

	// And the page shows the lag per workflow and input.
	mustContain(t, "agents page", e.page("/"), "prod: 120.6 KiB, 1.5s behind", "slot keeps 9.0 MiB")
}

// allSet returns the path of the first zero field under v ("" when none),
// looking into structs, pointers, slices and maps; fields the JSON leaves
// out (json:"-") do not count.
func allSet(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return path
		}
		return allSet(v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if v.Interface().(time.Time).IsZero() {
				return path
			}
			return ""
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || strings.Split(f.Tag.Get("json"), ",")[0] == "-" {
				continue
			}
			if p := allSet(v.Field(i), path+"."+f.Name); p != "" {
				return p
			}
		}
		return ""
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return path
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				if p := allSet(v.Index(i), path+"[]"); p != "" {
					return p
				}
			}
		}
		return ""
	}
	if v.IsZero() {
		return path
	}
	return ""
}
