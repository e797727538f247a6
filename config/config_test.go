package config_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/config"
)

var update = flag.Bool("update", false, "rewrite the golden .err files of testdata/bad")

// secretMark is in every value the test environment holds, so that a test
// can check that no secret reached a message.
const secretMark = "S3CR3T"

// testEnv is the environment of the tests: every value carries secretMark.
func testEnv() map[string]string {
	return map[string]string{
		"NOPII_HMAC_KEY":    "hmac-" + secretMark + "-0123456789abcdef0123456789abcdef",
		"SHORT_HMAC_KEY":    "short-" + secretMark,
		"NOPII_AGENT_TOKEN": "token-" + secretMark,
		"PROD_DATABASE_URL": "postgres://reader:pw-" + secretMark + "@prod:5432/app",
		"TWIN_DATABASE_URL": "postgres://writer:pw-" + secretMark + "@twin:5432/app",
		"DASHBOARD_URL":     "ftp://user:" + secretMark + "@dash",
		"S3_SECRET":         "aws-" + secretMark,
		"NEG_PARALLELISM":   "-3",
		"EMPTY_VAR":         "",
	}
}

// MustOptions returns Options reading env, with the fake rule catalog and a
// fixed host name.
func MustOptions(tb testing.TB, env map[string]string) config.Options {
	tb.Helper()
	return config.Options{
		Getenv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		CheckRule: fakeCheckRule,
		Hostname:  func() (string, error) { return "test-host", nil },
	}
}

// paramError is the error fakeCheckRule returns about one parameter, as
// package rulesets does.
type paramError struct{ param, msg string }

func (e *paramError) Error() string     { return "parameter " + e.param + ": " + e.msg }
func (e *paramError) ParamName() string { return e.param }

var errUnknownRule = errors.New("unknown rule")

// fakeCheckRule knows a few rules of SPEC §2 and the types of their
// parameters.
func fakeCheckRule(rule string, params map[string]any) error {
	catalog := map[string]map[string]string{
		"redact_email": {"domain": "string"},
		"fake":         {"kind": "string"},
		"hash":         {"length": "int"},
		"mask":         {"keep_last": "int", "keep_first": "int", "char": "string"},
		"replace":      {"value": "any"},
		"destroy":      {},
		"keep":         {},
		"json":         {"paths": "map"},
	}
	ps, ok := catalog[rule]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownRule, rule)
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kind, ok := ps[name]
		if !ok {
			return &paramError{name, "unknown parameter of rule " + rule}
		}
		v := params[name]
		switch kind {
		case "int":
			if _, ok := v.(int); !ok {
				return &paramError{name, fmt.Sprintf("expected an integer, got %T", v)}
			}
		case "string":
			if _, ok := v.(string); !ok {
				return &paramError{name, fmt.Sprintf("expected a string, got %T", v)}
			}
		case "map":
			if _, ok := v.(map[string]any); !ok {
				return &paramError{name, fmt.Sprintf("expected a mapping, got %T", v)}
			}
		}
	}
	if rule == "fake" && params["kind"] == nil {
		return errors.New("rule fake needs kind")
	}
	return nil
}

// want is one expected error of a bad file: "# want: LINE:COL text" (or
// "LINE text" when the column is unknown) at the end of the file.
type want struct {
	line, col int
	text      string // a part of "field: message"
}

func readWants(t *testing.T, data []byte) []want {
	t.Helper()
	var ws []want
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# want: ")
		if !ok {
			continue
		}
		pos, text, _ := strings.Cut(rest, " ")
		lineStr, colStr, hasCol := strings.Cut(pos, ":")
		line, err := strconv.Atoi(lineStr)
		if err != nil {
			t.Fatalf("bad want line %q", sc.Text())
		}
		col := 0
		if hasCol {
			if col, err = strconv.Atoi(colStr); err != nil {
				t.Fatalf("bad want line %q", sc.Text())
			}
		}
		ws = append(ws, want{line, col, text})
	}
	if len(ws) == 0 {
		t.Fatal("no # want: lines")
	}
	return ws
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d bad files, want at least 20", len(files))
	}
	env := testEnv()
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(file, data, MustOptions(t, env))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors; config: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with errors")
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is %T, want a non-empty config.Errors: %v", err, err)
			}
			for _, w := range readWants(t, data) {
				found := false
				for _, e := range errs {
					if e.Pos.File == file && e.Pos.Line == w.line && e.Pos.Col == w.col &&
						strings.Contains(strings.TrimPrefix(e.Error(), e.Pos.String()+": "), w.text) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error at %s:%d:%d containing %q; got:\n%v", file, w.line, w.col, w.text, err)
				}
			}
			for i, e := range errs {
				if i > 0 && errs[i-1].Pos.Line > e.Pos.Line {
					t.Errorf("errors not sorted by position:\n%v", err)
				}
				for _, v := range env {
					if v != "" && strings.Contains(e.Error(), v) || strings.Contains(e.Error(), secretMark) {
						t.Errorf("error message holds a secret: %s", e)
					}
				}
			}

			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantText, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(wantText) {
				t.Errorf("errors differ from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, wantText)
			}
		})
	}
}

// stripPos zeroes every position in cfg, so that a test can compare the
// values in one literal and the positions apart.
func stripPos(cfg *config.Config) {
	if cfg.Dashboard != nil {
		cfg.Dashboard.Pos = config.Pos{}
	}
	for i := range cfg.Workflows {
		w := &cfg.Workflows[i]
		w.Pos = config.Pos{}
		for j := range w.Inputs {
			in := &w.Inputs[j]
			in.Pos = config.Pos{}
			for k := range in.Tables {
				t := &in.Tables[k]
				t.Pos, t.KeyPos = config.Pos{}, nil
				for l := range t.Columns {
					c := &t.Columns[l]
					c.Pos, c.RulePos, c.ParamPos = config.Pos{}, config.Pos{}, nil
				}
			}
		}
		for j := range w.Feeds {
			w.Feeds[j].Pos = config.Pos{}
		}
	}
}

func TestSpecExample(t *testing.T) {
	const file = "testdata/good/spec.yaml"
	env := testEnv()
	cfg, err := config.Load(file, MustOptions(t, env))
	if err != nil {
		t.Fatal(err)
	}

	pos := func(line, col int) config.Pos { return config.Pos{File: file, Line: line, Col: col} }
	positions := []struct {
		name      string
		got, want config.Pos
	}{
		{"dashboard", cfg.Dashboard.Pos, pos(4, 3)},
		{"workflow", cfg.Workflows[0].Pos, pos(11, 5)},
		{"input", cfg.Workflows[0].Inputs[0].Pos, pos(15, 9)},
		{"table", cfg.Workflows[0].Inputs[0].Tables[0].Pos, pos(19, 13)},
		{"column", cfg.Workflows[0].Inputs[0].Tables[0].Columns[1].Pos, pos(30, 15)},
		{"rule", cfg.Workflows[0].Inputs[0].Tables[0].Columns[1].RulePos, pos(30, 35)},
		{"updated_at", cfg.Workflows[0].Inputs[0].Tables[0].KeyPos["updated_at"], pos(21, 25)},
		{"primary_key", cfg.Workflows[0].Inputs[0].Tables[0].KeyPos["primary_key"], pos(25, 26)},
		{"param", cfg.Workflows[0].Inputs[0].Tables[0].Columns[1].ParamPos["kind"], pos(30, 41)},
		{"feed", cfg.Workflows[0].Feeds[2].Pos, pos(47, 9)},
	}
	for _, p := range positions {
		if p.got != p.want {
			t.Errorf("%s at %v, want %v", p.name, p.got, p.want)
		}
	}
	if got := cfg.Workflows[0].Inputs[0].Tables[0].Columns[1].Pos.String(); got != file+":30:15" {
		t.Errorf("Pos.String() = %q", got)
	}

	stripPos(cfg)
	want := &config.Config{
		File:    file,
		Version: 1,
		HMACKey: config.Secret(env["NOPII_HMAC_KEY"]),
		Dashboard: &config.Dashboard{
			URL:               "http://nopii-dashboard:8090",
			Token:             config.Secret(env["NOPII_AGENT_TOKEN"]),
			HeartbeatInterval: 30 * time.Second,
		},
		Agent: config.Agent{Name: "prod-eu-1", Listen: "127.0.0.1:8080"},
		Workflows: []config.Workflow{{
			Name:           "ml-experimentation",
			Schedule:       "0 0 * * *",
			OnUnclassified: "fail",
			Inputs: []config.Input{{
				Name:        "prod",
				DSN:         config.Secret(env["PROD_DATABASE_URL"]),
				SlotWALWarn: config.DefaultSlotWALWarn,
				Tables: []config.Table{
					{
						Name: "public.customer", Schema: "public", Table: "customer",
						Mode: "delta", UpdatedAt: "last_update", CreatedAt: "create_date",
						Window: 90 * 24 * time.Hour, WindowBy: "created_at",
						PrimaryKey: []string{"customer_id"}, Identifies: []string{"email"},
						Columns: []config.ColumnRule{
							{Column: "email", Rule: "redact_email", Params: map[string]any{}},
							{Column: "first_name", Rule: "fake", Params: map[string]any{"kind": "first_name"}},
							{Column: "last_name", Rule: "fake", Params: map[string]any{"kind": "last_name"}},
						},
					},
					{
						Name: "public.staff", Schema: "public", Table: "staff",
						Columns: []config.ColumnRule{
							{Column: "password", Rule: "destroy", Params: map[string]any{}},
							{Column: "picture", Rule: "destroy", Params: map[string]any{}},
						},
					},
					{Name: "public.film_text", Schema: "public", Table: "film_text", Exclude: true},
				},
			}},
			Feeds: []config.Feed{
				{Type: "twin", DSN: config.Secret(env["TWIN_DATABASE_URL"]), Schema: "full"},
				{Type: "s3", Bucket: "lake", Prefix: "nopii/", Region: "us-east-1", Format: "parquet", Compression: "none", PartSize: 128 << 20, Retain: 2},
				{Type: "files", Path: "./nopii-out", Format: "csv", Compression: "none", PartSize: 128 << 20, Retain: 2},
			},
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		gotJSON, _ := json.MarshalIndent(cfg, "", "  ")
		wantJSON, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("config differs\ngot:  %s\nwant: %s\n(secrets print as [redacted]; %v)", gotJSON, wantJSON, cfg.HMACKey.Reveal() == want.HMACKey.Reveal())
	}
	if got := cfg.Workflows[0].Inputs[0].Tables[0].EffectiveMode(); got != "delta" {
		t.Errorf("EffectiveMode of public.customer = %q", got)
	}
	if got := cfg.Workflows[0].Inputs[0].Tables[1].EffectiveMode(); got != "full" {
		t.Errorf("EffectiveMode of public.staff = %q", got)
	}
	if cfg.Workflow("ml-experimentation") != &cfg.Workflows[0] || cfg.Workflow("nope") != nil {
		t.Error("Config.Workflow does not find workflows by name")
	}
}

// parse parses text with the test environment plus extra.
func parse(t *testing.T, text string, extra map[string]string) (*config.Config, error) {
	t.Helper()
	env := testEnv()
	for k, v := range extra {
		env[k] = v
	}
	return config.Parse("test.yaml", []byte(text), MustOptions(t, env))
}

// mustParse parses text and fails the test on errors.
func mustParse(t *testing.T, text string, extra map[string]string) *config.Config {
	t.Helper()
	cfg, err := parse(t, text, extra)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// minimal is a valid file with no rule needing a key; %s is spliced into
// the table entry.
const minimal = `version: 1
workflows:
  - name: ml
    parallelism: ${PAR:-0}
    inputs:
      - name: prod
        dsn: %s
        tables:
          - name: public.customer
    feeds:
      - type: twin
        dsn: ${TWIN_DATABASE_URL}
`

func TestExpansion(t *testing.T) {
	tests := []struct {
		name  string
		dsn   string // the dsn value as written
		env   map[string]string
		want  string // the DSN parsed
		check func(t *testing.T, cfg *config.Config)
	}{
		{name: "set", dsn: "${DSN}", env: map[string]string{"DSN": "postgres://h/db"}, want: "postgres://h/db"},
		{name: "default when unset", dsn: "${UNSET_DSN:-postgres://fallback/db}", want: "postgres://fallback/db"},
		{name: "default when empty", dsn: "${EMPTY_VAR:-postgres://fallback/db}", want: "postgres://fallback/db"},
		{name: "default ignored when set", dsn: "${DSN:-postgres://fallback/db}", env: map[string]string{"DSN": "postgres://h/db"}, want: "postgres://h/db"},
		{name: "dollar dollar", dsn: "host=h password=pa$$word", want: "host=h password=pa$word"},
		{name: "lone dollar", dsn: "host=h password=pa$word", want: "host=h password=pa$word"},
		{name: "several", dsn: "postgres://${U}:${P}@${H}/db", env: map[string]string{"U": "u", "P": "p", "H": "h"}, want: "postgres://u:p@h/db"},
		{
			// A value holding YAML syntax stays one scalar.
			name: "hash and colon", dsn: "${DSN}",
			env:  map[string]string{"DSN": "host=h password=a#b: c\n  - d: {e}"},
			want: "host=h password=a#b: c\n  - d: {e}",
		},
		{name: "not expanded twice", dsn: "${DSN}", env: map[string]string{"DSN": "pw-${OTHER}$$"}, want: "pw-${OTHER}$$"},
		{
			name: "int from env", dsn: "x", env: map[string]string{"PAR": "8"}, want: "x",
			check: func(t *testing.T, cfg *config.Config) {
				if got := cfg.Workflows[0].Parallelism; got != 8 {
					t.Errorf("Parallelism = %d, want 8", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := fmt.Sprintf(minimal, strconv.Quote(tt.dsn)) // quoted: $ and # as written
			cfg := mustParse(t, text, tt.env)
			if got := cfg.Workflows[0].Inputs[0].DSN.Reveal(); got != tt.want {
				t.Errorf("DSN = %q, want %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}

	t.Run("plain scalar with hash", func(t *testing.T) {
		// Unquoted ${DSN} whose value holds " #": not a comment.
		cfg := mustParse(t, fmt.Sprintf(minimal, "${DSN}"), map[string]string{"DSN": "host=h password=x #y: z"})
		if got := cfg.Workflows[0].Inputs[0].DSN.Reveal(); got != "host=h password=x #y: z" {
			t.Errorf("DSN = %q", got)
		}
	})
	t.Run("quoted int stays a string", func(t *testing.T) {
		text := strings.Replace(fmt.Sprintf(minimal, "x"), "${PAR:-0}", `"${PAR}"`, 1)
		_, err := parse(t, text, map[string]string{"PAR": "8"})
		assertOneError(t, err, "test.yaml:4:18: workflows[0].parallelism: expected an integer, got a string")
	})
	t.Run("unterminated", func(t *testing.T) {
		_, err := parse(t, fmt.Sprintf(minimal, "${DSN"), nil)
		assertOneError(t, err, "test.yaml:7:14: workflows[0].inputs[0].dsn: unterminated ${ (write $$ for a literal $)")
	})
	t.Run("unset in int", func(t *testing.T) {
		// Only the expansion error, not also "expected an integer".
		text := strings.Replace(fmt.Sprintf(minimal, "x"), "${PAR:-0}", "${PAR}", 1)
		_, err := parse(t, text, nil)
		assertOneError(t, err, "test.yaml:4:18: workflows[0].parallelism: environment variable PAR is not set: export it, or write ${PAR:-default} for a default")
	})
}

func TestExpandDefaultsKeepTypes(t *testing.T) {
	cfg := mustParse(t, fmt.Sprintf(minimal, "x"), nil)
	if got := cfg.Workflows[0].Parallelism; got != 0 {
		t.Errorf("Parallelism = %d", got)
	}
}

// assertOneError checks that err is an Errors of one error printing as want.
func assertOneError(t *testing.T, err error, want string) {
	t.Helper()
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v, want config.Errors", err, err)
	}
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors:\n%v\nwant one:\n%s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	text := `version: 1
workflows:
  - name: nightly_copy
    inputs:
      - name: prod
        dsn: ${PROD_DATABASE_URL}
        tables:
          - name: '"Sales".*'
          - name: public.orders
            updated_at: updated_at
            detect_deletes: true
            window: 1d12h
            window_by: updated_at
            primary_key: order_id
          - name: public.events
            mode: cdc
    feeds:
      - type: s3
        bucket: lake
        part_size: 64MB
        retain: 5
        compression: zstd
        sse: aws:kms
        sse_kms_key_id: alias/nopii
        access_key_id: AKIA1
        secret_access_key: ${S3_SECRET}
`
	cfg := mustParse(t, text, nil)
	if cfg.Dashboard != nil {
		t.Errorf("Dashboard = %+v, want nil", cfg.Dashboard)
	}
	if cfg.Agent != (config.Agent{Name: "test-host", Listen: "127.0.0.1:8080"}) {
		t.Errorf("Agent = %+v", cfg.Agent)
	}
	if cfg.HMACKey != "" {
		t.Error("HMACKey set")
	}
	w := cfg.Workflows[0]
	if w.OnUnclassified != "fail" || w.Schedule != "" || w.Parallelism != 0 {
		t.Errorf("workflow defaults: %+v", w)
	}
	tables := w.Inputs[0].Tables
	if tb := tables[0]; !tb.Pattern || tb.Schema != "Sales" || tb.Table != "*" || tb.EffectiveMode() != "full" {
		t.Errorf("pattern table: %+v", tb)
	}
	tb := tables[1]
	if tb.Mode != "" || tb.EffectiveMode() != "delta" || !tb.DetectDeletes || tb.Window != 36*time.Hour ||
		tb.WindowBy != "updated_at" || !slices.Equal(tb.PrimaryKey, []string{"order_id"}) {
		t.Errorf("delta table: %+v", tb)
	}
	if tb := tables[2]; tb.Mode != "cdc" || tb.EffectiveMode() != "cdc" {
		t.Errorf("cdc table: %+v", tb)
	}
	if got := w.Inputs[0].SlotWALWarn; got != 1<<30 {
		t.Errorf("slot_wal_warn defaults to %d, want 1GiB", got)
	}
	if got := mustParse(t, strings.Replace(text, "        tables:\n", "        slot_wal_warn: 256MiB\n        tables:\n", 1), nil).Workflows[0].Inputs[0].SlotWALWarn; got != 256<<20 {
		t.Errorf("slot_wal_warn: 256MiB = %d", got)
	}
	f := w.Feeds[0]
	wantFeed := config.Feed{
		Type: "s3", Bucket: "lake", Format: "parquet", Compression: "zstd", PartSize: 64_000_000, Retain: 5,
		SSE: "aws:kms", SSEKMSKeyID: "alias/nopii", AccessKeyID: "AKIA1", SecretAccessKey: config.Secret(testEnv()["S3_SECRET"]),
		Pos: f.Pos,
	}
	if f != wantFeed {
		t.Errorf("feed = %+v\nwant %+v", f, wantFeed)
	}
}

func TestWindowDefaultsToCreatedAt(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(minimal, "x"), "          - name: public.customer\n",
		"          - name: public.customer\n            created_at: created\n            window: 90d\n", 1)
	cfg := mustParse(t, text, nil)
	tb := cfg.Workflows[0].Inputs[0].Tables[0]
	if tb.Window != 90*24*time.Hour || tb.WindowBy != "created_at" {
		t.Errorf("Window = %v, WindowBy = %q", tb.Window, tb.WindowBy)
	}
}

func TestJSONRuleNeedsKeyOnlyThroughPaths(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(minimal, "x"), "          - name: public.customer\n", `          - name: public.customer
            columns:
              profile:
                rule: json
                paths:
                  "$.phone": { rule: mask, keep_last: 2 }
                  "$.photo": { rule: destroy }
`, 1)
	cfg := mustParse(t, text, nil)
	c := cfg.Workflows[0].Inputs[0].Tables[0].Columns[0]
	want := map[string]any{"paths": map[string]any{
		"$.phone": map[string]any{"rule": "mask", "keep_last": 2},
		"$.photo": map[string]any{"rule": "destroy"},
	}}
	if !reflect.DeepEqual(c.Params, want) {
		t.Errorf("Params = %#v", c.Params)
	}
}

func TestParamTypes(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(minimal, "x"), "          - name: public.customer\n", `          - name: public.customer
            columns:
              note: { rule: replace, value: [1, 2.5, true, null, text, "007", {k: v}] }
`, 1)
	opts := MustOptions(t, testEnv())
	opts.CheckRule = nil // no catalog: any rule, any params
	cfg, err := config.Parse("test.yaml", []byte(text), opts)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Workflows[0].Inputs[0].Tables[0].Columns[0].Params["value"]
	want := []any{1, 2.5, true, nil, "text", "007", map[string]any{"k": "v"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("value = %#v, want %#v", got, want)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	text := `version: 1
x-lake: &lake
  type: s3
  bucket: lake
  format: jsonl
workflows:
  - name: a
    inputs:
      - &prod
        name: prod
        dsn: ${PROD_DATABASE_URL}
        tables: [{name: public.x}]
    feeds:
      - <<: *lake
        prefix: a/
  - name: b
    inputs: [*prod]
    feeds:
      - <<: *lake
        format: csv
`
	cfg := mustParse(t, text, nil)
	a, b := cfg.Workflows[0], cfg.Workflows[1]
	if a.Feeds[0].Bucket != "lake" || a.Feeds[0].Prefix != "a/" || a.Feeds[0].Format != "jsonl" {
		t.Errorf("feed a = %+v", a.Feeds[0])
	}
	if b.Feeds[0].Bucket != "lake" || b.Feeds[0].Format != "csv" {
		t.Errorf("feed b = %+v: own keys must win over merged ones", b.Feeds[0])
	}
	if b.Inputs[0].Name != "prod" || b.Inputs[0].Tables[0].Name != "public.x" {
		t.Errorf("input b = %+v", b.Inputs[0])
	}

	_, err := parse(t, "version: 1\nworkflows: &w\n  - <<: *w\n", nil)
	if err == nil {
		t.Fatal("merging a list into a mapping: no error")
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	env := testEnv()
	text := `version: 1
hmac_key: ${NOPII_HMAC_KEY}
dashboard:
  url: https://dash.example.com
  token: ${NOPII_AGENT_TOKEN}
workflows:
  - name: ml
    inputs:
      - name: prod
        dsn: ${PROD_DATABASE_URL}
        tables: [{name: public.customer, columns: {email: {rule: hash}}}]
    feeds:
      - type: twin
        dsn: ${TWIN_DATABASE_URL}
      - type: s3
        bucket: lake
        access_key_id: AKIA1
        secret_access_key: ${S3_SECRET}
`
	cfg, err := config.Parse("test.yaml", []byte(text), MustOptions(t, env))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "key", cfg.HMACKey, "feed", cfg.Workflows[0].Feeds[1])
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "key", cfg.HMACKey, "dsn", cfg.Workflows[0].Inputs[0].DSN)
	jsonOut, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"fmt":       fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		"fmt deref": fmt.Sprintf("%v %+v %#v %v %+v %#v", *cfg, *cfg, *cfg, *cfg.Dashboard, *cfg.Dashboard, *cfg.Dashboard),
		"verbs":     fmt.Sprintf("%s %q %x %X %d %10s %v %#v", cfg.HMACKey, cfg.HMACKey, cfg.HMACKey, cfg.HMACKey, cfg.HMACKey, cfg.HMACKey, []config.Secret{cfg.HMACKey}, map[string]config.Secret{"k": cfg.HMACKey}),
		"json":      string(jsonOut),
		"slog":      logs.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, secretMark) {
			t.Errorf("%s output holds a secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s output does not say [redacted]: %s", name, out)
		}
	}
	if cfg.HMACKey.Reveal() != env["NOPII_HMAC_KEY"] {
		t.Error("Reveal does not return the secret")
	}
	if got := fmt.Sprint(config.Secret("")); got != "" {
		t.Errorf("empty secret prints %q", got)
	}
}

func TestCheckRuleErrorUnwraps(t *testing.T) {
	data, err := os.ReadFile("testdata/bad/unknown_rule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse("unknown_rule.yaml", data, MustOptions(t, testEnv()))
	if !errors.Is(err, errUnknownRule) {
		t.Errorf("errors.Is(err, errUnknownRule) = false for %v", err)
	}
	var e *config.Error
	if !errors.As(err, &e) || e.Field != "workflows[0].inputs[0].tables[0].columns.email.rule" || e.Pos.Line != 11 {
		t.Errorf("errors.As gives %+v", e)
	}
}

func TestErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nworkflows:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "  - name: Bad%d\n    inputs: []\n    feeds: []\n", i)
	}
	_, err := parse(t, b.String(), nil)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	if len(errs) != 21 {
		t.Fatalf("got %d errors, want 20 and a last one saying how many more", len(errs))
	}
	if last := errs[20].Error(); !strings.HasPrefix(last, "test.yaml: too many errors (70 more after line 22)") {
		t.Errorf("last error = %q", last)
	}
	if first := errs[0].Error(); first != `test.yaml:3:11: workflows[0].name: "Bad0" is not a valid workflow name: use lower-case letters, digits, - and _, starting with a letter or digit (it names folders and replication slots)` {
		t.Errorf("first error = %q", first)
	}
}

func TestEmptyAndNonMapping(t *testing.T) {
	tests := []struct{ text, want string }{
		{"", "test.yaml:1:1: the file is empty: expected version: 1 and a list of workflows"},
		{"# just a comment\n", "test.yaml:1:1: the file is empty: expected version: 1 and a list of workflows"},
		{"- a\n- b\n", "test.yaml:1:1: expected a mapping with version, hmac_key, dashboard, agent and workflows, got a list"},
	}
	for _, tt := range tests {
		_, err := parse(t, tt.text, nil)
		assertOneError(t, err, tt.want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load("testdata/no-such-file.yaml", config.Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestHostnameFailure(t *testing.T) {
	opts := MustOptions(t, testEnv())
	opts.Hostname = func() (string, error) { return "", errors.New("no uts namespace") }
	_, err := config.Parse("test.yaml", []byte(fmt.Sprintf(minimal, "x")), opts)
	assertOneError(t, err, "test.yaml:1:1: agent.name: not set, and the host name is unknown (no uts namespace): set agent.name")
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nx-a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString(`workflows:
  - name: ml
    inputs:
      - name: prod
        dsn: x
        tables:
          - name: public.t
            columns:
              c: {rule: replace, value: *a7}
    feeds:
      - {type: twin, dsn: x}
`)
	opts := MustOptions(t, nil)
	opts.CheckRule = nil
	start := time.Now()
	_, err := config.Parse("test.yaml", []byte(b.String()), opts)
	if time.Since(start) > 10*time.Second {
		t.Errorf("Parse took %v", time.Since(start))
	}
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), "the document is too large") {
		t.Errorf("err = %v, want one error saying the document is too large", err)
	}
}

func TestLockWait(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(minimal, "x"), "    parallelism: ${PAR:-0}\n", "    lock_wait: 90s\n", 1)
	if got := mustParse(t, text, nil).Workflows[0].LockWait; got != 90*time.Second {
		t.Errorf("LockWait = %v, want 90s", got)
	}
	if got := mustParse(t, fmt.Sprintf(minimal, "x"), nil).Workflows[0].LockWait; got != 0 {
		t.Errorf("LockWait without lock_wait = %v, want 0 (do not wait)", got)
	}
}

func TestTwinSchema(t *testing.T) {
	withSchema := func(v string) string {
		return fmt.Sprintf(minimal, "x") + "        schema: " + v + "\n"
	}
	for _, tt := range []struct{ text, want string }{
		{fmt.Sprintf(minimal, "x"), config.SchemaFull},
		{withSchema("full"), config.SchemaFull},
		{withSchema("data_only"), config.SchemaDataOnly},
	} {
		if got := mustParse(t, tt.text, nil).Workflows[0].Feeds[0].Schema; got != tt.want {
			t.Errorf("Schema = %q, want %q", got, tt.want)
		}
	}
	_, err := parse(t, withSchema("everything"), nil)
	assertOneError(t, err, `test.yaml:13:17: workflows[0].feeds[0].schema: "everything" is not a twin schema (expected full or data_only)`)
	_, err = parse(t, strings.Replace(fmt.Sprintf(minimal, "x"), "      - type: twin\n        dsn: ${TWIN_DATABASE_URL}\n",
		"      - type: files\n        path: ./out\n        schema: full\n", 1), nil)
	assertOneError(t, err, `test.yaml:13:9: workflows[0].feeds[0].schema: schema is not a key of a files feed (files feeds take: type, path, format, compression, part_size, retain)`)
}

func TestTwinLockTimeout(t *testing.T) {
	with := func(v string) string {
		return fmt.Sprintf(minimal, "x") + "        lock_timeout: " + v + "\n"
	}
	if got := mustParse(t, fmt.Sprintf(minimal, "x"), nil).Workflows[0].Feeds[0].LockTimeout; got != 0 {
		t.Errorf("LockTimeout without the key = %v, want 0 (the feed's default)", got)
	}
	if got := mustParse(t, with("30s"), nil).Workflows[0].Feeds[0].LockTimeout; got != 30*time.Second {
		t.Errorf("LockTimeout = %v, want 30s", got)
	}
	_, err := parse(t, with("0s"), nil)
	assertOneError(t, err, `test.yaml:13:23: workflows[0].feeds[0].lock_timeout: must be more than 0`)
}
