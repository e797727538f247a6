package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
)

// ErrNotFound is returned when a named thing (an agent's tokens) does not exist.
var ErrNotFound = errors.New("not found")

// ErrJobOwner is returned by Store.PutJob when the job id belongs to
// another agent.
var ErrJobOwner = errors.New("job belongs to another agent")

// scansKept bounds the scan reports kept per agent (their findings are
// kept across scans, in table findings, whatever the count).
const scansKept = 200

// Store keeps the dashboard's data in PostgreSQL, schema nopii_dashboard.
// Its methods are safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to dsn and applies the schema migrations.
// Errors never contain the password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	// pgxpool's errors quote the DSN as pgx does: parse it ours first,
	// and mask what the pool's own keys or connections report.
	if _, err := pgconnect.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("dashboard database: parse dsn: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dashboard database: parse dsn: %w", pgconnect.Hide(err, dsn))
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["application_name"] = "nopii-dashboard"
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dashboard database: %w", pgconnect.Hide(err, dsn))
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, pgconnect.Hide(err, dsn)
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// migrations are applied in order, each once, in its own transaction;
// their index+1 is their version. Append, never edit.
var migrations = []string{
	`CREATE TABLE nopii_dashboard.tokens (
		id         bigserial PRIMARY KEY,
		name       text NOT NULL,
		sha256     bytea NOT NULL UNIQUE,
		created_at timestamptz NOT NULL DEFAULT now(),
		revoked_at timestamptz
	);
	CREATE INDEX tokens_active_name ON nopii_dashboard.tokens (name) WHERE revoked_at IS NULL;
	CREATE TABLE nopii_dashboard.agents (
		name                       text PRIMARY KEY,
		version                    text NOT NULL DEFAULT '',
		last_seen                  timestamptz NOT NULL,
		heartbeat_interval_seconds double precision NOT NULL,
		workflows                  jsonb NOT NULL DEFAULT '[]',
		config_error               text NOT NULL DEFAULT ''
	);
	CREATE TABLE nopii_dashboard.jobs (
		job_id      uuid PRIMARY KEY,
		agent       text NOT NULL,
		workflow    text NOT NULL,
		status      text NOT NULL CHECK (status IN ('running', 'success', 'failed')),
		started_at  timestamptz NOT NULL,
		finished_at timestamptz,
		received_at timestamptz NOT NULL,
		report      jsonb NOT NULL
	);
	CREATE INDEX jobs_started ON nopii_dashboard.jobs (started_at DESC);
	CREATE INDEX jobs_agent_workflow ON nopii_dashboard.jobs (agent, workflow, started_at DESC);
	CREATE TABLE nopii_dashboard.scans (
		id          bigserial PRIMARY KEY,
		agent       text NOT NULL,
		received_at timestamptz NOT NULL,
		findings    jsonb NOT NULL
	);
	CREATE INDEX scans_agent ON nopii_dashboard.scans (agent, received_at DESC);`,
	// 2: pages of jobs walk (started_at, job_id) backwards from a cursor.
	`CREATE INDEX jobs_started_id ON nopii_dashboard.jobs (started_at DESC, job_id DESC);
	DROP INDEX nopii_dashboard.jobs_started;
	CREATE INDEX jobs_agent_workflow_id ON nopii_dashboard.jobs (agent, workflow, started_at DESC, job_id DESC);
	DROP INDEX nopii_dashboard.jobs_agent_workflow;`,
	// 3: scan history and findings across scans; alerts and their
	// deliveries to webhooks.
	`ALTER TABLE nopii_dashboard.scans ADD COLUMN source text NOT NULL DEFAULT '';
	ALTER TABLE nopii_dashboard.scans ADD COLUMN schemas jsonb NOT NULL DEFAULT '[]';
	CREATE TABLE nopii_dashboard.findings (
		agent       text NOT NULL,
		schema_name text NOT NULL,
		table_name  text NOT NULL,
		column_name text NOT NULL,
		finding     jsonb NOT NULL,
		first_seen  timestamptz NOT NULL,
		last_seen   timestamptz NOT NULL,
		seen        int NOT NULL DEFAULT 1,
		covered_at  timestamptz,
		covered_by  text NOT NULL DEFAULT '',
		covered_job text NOT NULL DEFAULT '',
		PRIMARY KEY (agent, schema_name, table_name, column_name)
	);
	CREATE INDEX findings_open ON nopii_dashboard.findings (agent, schema_name, table_name) WHERE covered_at IS NULL;
	CREATE TABLE nopii_dashboard.alerts (
		id         bigserial PRIMARY KEY,
		dedupe_key text NOT NULL UNIQUE,
		kind       text NOT NULL,
		agent      text NOT NULL,
		workflow   text NOT NULL DEFAULT '',
		job_id     text NOT NULL DEFAULT '',
		message    text NOT NULL,
		created_at timestamptz NOT NULL
	);
	CREATE INDEX alerts_created ON nopii_dashboard.alerts (created_at DESC, id DESC);
	CREATE TABLE nopii_dashboard.deliveries (
		id              bigserial PRIMARY KEY,
		alert_id        bigint NOT NULL REFERENCES nopii_dashboard.alerts ON DELETE CASCADE,
		webhook         text NOT NULL,
		target          text NOT NULL,
		status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
		attempts        int NOT NULL DEFAULT 0,
		next_attempt_at timestamptz NOT NULL,
		last_code       int NOT NULL DEFAULT 0,
		last_error      text NOT NULL DEFAULT '',
		log             jsonb NOT NULL DEFAULT '[]',
		updated_at      timestamptz NOT NULL,
		UNIQUE (alert_id, webhook)
	);
	CREATE INDEX deliveries_due ON nopii_dashboard.deliveries (next_attempt_at) WHERE status = 'pending';
	CREATE TABLE nopii_dashboard.alert_state (
		key   text PRIMARY KEY,
		since timestamptz NOT NULL
	);`,
}

// migrate creates the schema and applies missing migrations. An advisory
// lock keeps two dashboards starting at once from racing.
func (s *Store) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('nopii_dashboard.migrate'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS nopii_dashboard;
			CREATE TABLE IF NOT EXISTS nopii_dashboard.schema_migrations (
				version    int PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM nopii_dashboard.schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this nopii (%d): upgrade nopii", have, len(migrations))
		}
		for v := have + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO nopii_dashboard.schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dashboard database: migrate: %w", pgconnect.SafeError(err))
	}
	return nil
}

// hashToken is what the tokens table keeps of a token.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken makes a new token for the agent name and returns it. Only its
// SHA-256 is stored: the caller shows it once. An agent may hold several
// tokens (rotation); RevokeTokens revokes them all.
func (s *Store) CreateToken(ctx context.Context, name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	if _, err := s.pool.Exec(ctx, `INSERT INTO nopii_dashboard.tokens (name, sha256) VALUES ($1, $2)`, name, hashToken(token)); err != nil {
		return "", fmt.Errorf("create token: %w", pgconnect.SafeError(err))
	}
	return token, nil
}

// RevokeTokens revokes every active token of the agent name and returns how
// many. It returns ErrNotFound when the name has no active token.
func (s *Store) RevokeTokens(ctx context.Context, name string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE nopii_dashboard.tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL`, name)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", pgconnect.SafeError(err))
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("no active token for agent %q: %w", name, ErrNotFound)
	}
	return tag.RowsAffected(), nil
}

// TokenAgent returns the agent name of an active token, and false when
// the token is unknown or revoked.
func (s *Store) TokenAgent(ctx context.Context, token string) (string, bool, error) {
	var name string
	err := s.pool.QueryRow(ctx, `SELECT name FROM nopii_dashboard.tokens WHERE sha256 = $1 AND revoked_at IS NULL`, hashToken(token)).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up token: %w", pgconnect.SafeError(err))
	}
	return name, true, nil
}

// PutHeartbeat records a heartbeat received at now.
func (s *Store) PutHeartbeat(ctx context.Context, hb wire.Heartbeat, now time.Time) error {
	wf := hb.Workflows
	if wf == nil {
		wf = []wire.WorkflowStatus{}
	}
	wfJSON, err := json.Marshal(wf)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO nopii_dashboard.agents AS a (name, version, last_seen, heartbeat_interval_seconds, workflows, config_error)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, last_seen = EXCLUDED.last_seen,
			heartbeat_interval_seconds = EXCLUDED.heartbeat_interval_seconds,
			workflows = EXCLUDED.workflows, config_error = EXCLUDED.config_error`,
		hb.Agent, hb.Version, now, hb.IntervalSeconds, wfJSON, hb.ConfigError)
	if err != nil {
		return fmt.Errorf("store heartbeat: %w", pgconnect.SafeError(err))
	}
	return nil
}

// Agents returns the agents by name, with their state at now.
func (s *Store) Agents(ctx context.Context, now time.Time) ([]Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, last_seen, heartbeat_interval_seconds, workflows, config_error
		FROM nopii_dashboard.agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", pgconnect.SafeError(err))
	}
	out := []Agent{}
	for rows.Next() {
		var a Agent
		var wf []byte
		if err := rows.Scan(&a.Name, &a.Version, &a.LastSeen, &a.IntervalSeconds, &wf, &a.ConfigError); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list agents: %w", err)
		}
		if err := json.Unmarshal(wf, &a.Workflows); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list agents: workflows of %s: %w", a.Name, err)
		}
		a.LastSeen = a.LastSeen.UTC()
		a.State = a.state(now)
		a.Healthy = a.State == AgentHealthy
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// Fresh reports whether a heartbeat at lastSeen, from an agent beating
// every interval seconds, is younger than two intervals at now.
func Fresh(lastSeen time.Time, intervalSeconds float64, now time.Time) bool {
	return now.Sub(lastSeen) < time.Duration(2*intervalSeconds*float64(time.Second))
}

// PutJob inserts the job or, for a job id already posted by the same
// agent, replaces it. A late "running" post does not overwrite a final
// status. It returns ErrJobOwner when the id belongs to another agent.
// A final report also covers the open findings of its tables' redacted
// columns (docs/dashboard.md).
func (s *Store) PutJob(ctx context.Context, j wire.Job, now time.Time) error {
	if j.Tables == nil {
		j.Tables = []wire.TableReport{}
	}
	report, err := json.Marshal(j)
	if err != nil {
		return err
	}
	var finished *time.Time
	if !j.FinishedAt.IsZero() {
		finished = &j.FinishedAt
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `
			INSERT INTO nopii_dashboard.jobs AS j (job_id, agent, workflow, status, started_at, finished_at, received_at, report)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (job_id) DO UPDATE SET workflow = EXCLUDED.workflow, status = EXCLUDED.status,
				started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
				received_at = EXCLUDED.received_at, report = EXCLUDED.report
			WHERE j.agent = EXCLUDED.agent AND NOT (j.status <> 'running' AND EXCLUDED.status = 'running')
			RETURNING agent`,
			j.JobID, j.Agent, j.Workflow, j.Status, j.StartedAt, finished, now, report).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			// The row exists and was left alone: whose is it?
			err = tx.QueryRow(ctx, `SELECT agent FROM nopii_dashboard.jobs WHERE job_id = $1`, j.JobID).Scan(&owner)
			if err == nil && owner != j.Agent {
				return ErrJobOwner
			}
			return err
		}
		if err != nil || j.Status == wire.StatusRunning {
			return err
		}
		for _, t := range j.Tables {
			if len(t.Redacted) == 0 || t.Error != "" {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE nopii_dashboard.findings
				SET covered_at = $5, covered_by = 'rule', covered_job = $6
				WHERE agent = $1 AND schema_name || '.' || table_name = $2 AND column_name = ANY($3)
				  AND covered_at IS NULL AND last_seen <= $4`,
				j.Agent, t.Table, t.Redacted, j.StartedAt, now, j.JobID); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrJobOwner) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store job: %w", pgconnect.SafeError(err))
	}
	return nil
}

// Jobs limits: a page holds DefaultJobsLimit jobs unless the filter says
// otherwise, and never more than MaxJobsLimit.
const (
	DefaultJobsLimit = 100
	MaxJobsLimit     = 1000
)

// Jobs returns a page of jobs newest first (by started_at, then job id),
// and the cursor of the next page: the job id to pass as f.Before, or ""
// when this page is the last. A Before that names no job is ErrNotFound.
func (s *Store) Jobs(ctx context.Context, f JobFilter) (jobs []wire.Job, next string, err error) {
	if f.Limit <= 0 {
		f.Limit = DefaultJobsLimit
	}
	f.Limit = min(f.Limit, MaxJobsLimit)
	var before *string
	if f.Before != "" {
		if !uuidRE.MatchString(f.Before) {
			return nil, "", fmt.Errorf("cursor %q: %w", f.Before, ErrNotFound)
		}
		before = &f.Before
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM nopii_dashboard.jobs WHERE job_id = $1::uuid`, f.Before).Scan(&n); err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", pgconnect.SafeError(err))
		}
		if n == 0 {
			return nil, "", fmt.Errorf("cursor %q: no such job: %w", f.Before, ErrNotFound)
		}
	}
	// One more than the page: whether there is a next page.
	rows, err := s.pool.Query(ctx, `SELECT job_id::text, agent, workflow, status, started_at, finished_at, report
		FROM nopii_dashboard.jobs
		WHERE ($1 = '' OR agent = $1) AND ($2 = '' OR workflow = $2) AND ($3 = '' OR status = $3)
		  AND ($4::uuid IS NULL OR (started_at, job_id) < (SELECT started_at, job_id FROM nopii_dashboard.jobs WHERE job_id = $4::uuid))
		ORDER BY started_at DESC, job_id DESC LIMIT $5`, f.Agent, f.Workflow, f.Status, before, f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []wire.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", pgconnect.SafeError(err))
	}
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].JobID
	}
	return out, next, nil
}

// Job returns one job, or ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (wire.Job, error) {
	if !uuidRE.MatchString(id) {
		return wire.Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT job_id::text, agent, workflow, status, started_at, finished_at, report
		FROM nopii_dashboard.jobs WHERE job_id = $1::uuid`, id)
	if err != nil {
		return wire.Job{}, fmt.Errorf("read job: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return wire.Job{}, fmt.Errorf("read job: %w", pgconnect.SafeError(err))
		}
		return wire.Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	j, err := scanJob(rows)
	if err != nil {
		return wire.Job{}, fmt.Errorf("read job: %w", err)
	}
	return j, nil
}

// scanJob reads a row of job_id, agent, workflow, status, started_at,
// finished_at, report: the columns win over the report's copy of them.
func scanJob(rows pgx.Rows) (wire.Job, error) {
	var j wire.Job
	var id, agent, workflow, status string
	var started time.Time
	var finished *time.Time
	var report []byte
	if err := rows.Scan(&id, &agent, &workflow, &status, &started, &finished, &report); err != nil {
		return j, err
	}
	if err := json.Unmarshal(report, &j); err != nil {
		return j, fmt.Errorf("report of %s: %w", id, err)
	}
	j.JobID, j.Agent, j.Workflow, j.Status, j.StartedAt = id, agent, workflow, wire.Status(status), started.UTC()
	j.FinishedAt = time.Time{}
	if finished != nil {
		j.FinishedAt = finished.UTC()
	}
	if j.Tables == nil {
		j.Tables = []wire.TableReport{}
	}
	return j, nil
}

// Run is one run of a workflow in its history: the points of a job's chart.
type Run struct {
	JobID     string      `json:"job_id"`
	Status    wire.Status `json:"status"`
	StartedAt time.Time   `json:"started_at"`
	Seconds   float64     `json:"seconds"`
	Rows      int64       `json:"rows"`
	Upserted  int64       `json:"upserted"`
	Deleted   int64       `json:"deleted"`
}

// Runs returns the last n finished runs of an agent's workflow that
// started at or before until, oldest first.
func (s *Store) Runs(ctx context.Context, agent, workflow string, until time.Time, n int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
		SELECT job_id::text, status, started_at, coalesce((report->>'seconds')::float8, 0),
			coalesce(sum((t->>'rows')::bigint), 0)::bigint, coalesce(sum((t->>'upserted')::bigint), 0)::bigint,
			coalesce(sum((t->>'deleted')::bigint), 0)::bigint
		FROM nopii_dashboard.jobs LEFT JOIN LATERAL jsonb_array_elements(report->'tables') t ON true
		WHERE agent = $1 AND workflow = $2 AND status <> 'running' AND started_at <= $3
		GROUP BY job_id
		ORDER BY started_at DESC, job_id DESC LIMIT $4) r ORDER BY started_at, job_id`, agent, workflow, until, n)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var status string
		if err := rows.Scan(&r.JobID, &status, &r.StartedAt, &r.Seconds, &r.Rows, &r.Upserted, &r.Deleted); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		r.Status, r.StartedAt = wire.Status(status), r.StartedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// Names returns the agents, workflows and statuses jobs were reported
// with, for the Jobs page's filters.
func (s *Store) Names(ctx context.Context) (agents, workflows []string, err error) {
	for _, q := range []struct {
		sql string
		out *[]string
	}{
		{`SELECT DISTINCT agent FROM nopii_dashboard.jobs ORDER BY 1`, &agents},
		{`SELECT DISTINCT workflow FROM nopii_dashboard.jobs ORDER BY 1`, &workflows},
	} {
		rows, err := s.pool.Query(ctx, q.sql)
		if err != nil {
			return nil, nil, fmt.Errorf("list names: %w", pgconnect.SafeError(err))
		}
		*q.out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, nil, fmt.Errorf("list names: %w", pgconnect.SafeError(err))
		}
	}
	return agents, workflows, nil
}

// PutScan records a scan report, drops the agent's oldest ones beyond the
// last scansKept, and folds the report into the agent's findings: each
// reported column is seen (again: open), and a `nopii scan` report covers
// the open findings of the schemas it read that it no longer reports.
func (s *Store) PutScan(ctx context.Context, sc wire.ScanReport, now time.Time) error {
	if sc.Findings == nil {
		sc.Findings = []scanner.ColumnFinding{}
	}
	if sc.Schemas == nil {
		sc.Schemas = []string{}
	}
	findings, err := json.Marshal(sc.Findings)
	if err != nil {
		return err
	}
	schemas, err := json.Marshal(sc.Schemas)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO nopii_dashboard.scans (agent, received_at, findings, source, schemas) VALUES ($1, $2, $3, $4, $5)`,
			sc.Agent, now, findings, sc.Source, schemas); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM nopii_dashboard.scans WHERE agent = $1 AND id NOT IN (
			SELECT id FROM nopii_dashboard.scans WHERE agent = $1 ORDER BY received_at DESC, id DESC LIMIT $2)`, sc.Agent, scansKept); err != nil {
			return err
		}
		reported := map[string]bool{}
		for _, f := range sc.Findings {
			b, err := json.Marshal(f)
			if err != nil {
				return err
			}
			reported[f.Schema+"."+f.Table+"."+f.Column] = true
			if _, err := tx.Exec(ctx, `INSERT INTO nopii_dashboard.findings AS f
				(agent, schema_name, table_name, column_name, finding, first_seen, last_seen)
				VALUES ($1, $2, $3, $4, $5, $6, $6)
				ON CONFLICT (agent, schema_name, table_name, column_name) DO UPDATE SET
					finding = EXCLUDED.finding, last_seen = EXCLUDED.last_seen, seen = f.seen + 1,
					covered_at = NULL, covered_by = '', covered_job = ''`,
				sc.Agent, f.Schema, f.Table, f.Column, b, now); err != nil {
				return err
			}
		}
		if sc.Source != wire.ScanByScan {
			return nil // the guard judges some columns only: its silence covers nothing
		}
		rows, err := tx.Query(ctx, `SELECT schema_name, table_name, column_name FROM nopii_dashboard.findings
			WHERE agent = $1 AND covered_at IS NULL`, sc.Agent)
		if err != nil {
			return err
		}
		type col struct{ schema, table, column string }
		var gone []col
		for rows.Next() {
			var c col
			if err := rows.Scan(&c.schema, &c.table, &c.column); err != nil {
				rows.Close()
				return err
			}
			if !reported[c.schema+"."+c.table+"."+c.column] && schemaScanned(sc.Schemas, c.schema) {
				gone = append(gone, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range gone {
			if _, err := tx.Exec(ctx, `UPDATE nopii_dashboard.findings SET covered_at = $5, covered_by = 'scan'
				WHERE agent = $1 AND schema_name = $2 AND table_name = $3 AND column_name = $4`,
				sc.Agent, c.schema, c.table, c.column, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store scan: %w", pgconnect.SafeError(err))
	}
	return nil
}

// schemaScanned reports whether a scan over the schema patterns read
// schema (no patterns: every schema), as scanner.Options.Schemas matches.
func schemaScanned(patterns []string, schema string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, schema); ok {
			return true
		}
	}
	return false
}

// Scans returns the last n scan reports of every agent, newest first.
func (s *Store) Scans(ctx context.Context, n int) ([]Scan, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, agent, received_at, source, schemas, findings
		FROM nopii_dashboard.scans ORDER BY received_at DESC, id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list scans: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []Scan{}
	for rows.Next() {
		var sc Scan
		var source string
		var schemas, findings []byte
		if err := rows.Scan(&sc.ID, &sc.Agent, &sc.ReceivedAt, &source, &schemas, &findings); err != nil {
			return nil, fmt.Errorf("list scans: %w", err)
		}
		if err := json.Unmarshal(findings, &sc.Findings); err != nil {
			return nil, fmt.Errorf("list scans: findings of %s: %w", sc.Agent, err)
		}
		if err := json.Unmarshal(schemas, &sc.Schemas); err != nil {
			return nil, fmt.Errorf("list scans: schemas of %s: %w", sc.Agent, err)
		}
		if len(sc.Schemas) == 0 {
			sc.Schemas = nil
		}
		sc.Source, sc.ReceivedAt = wire.ScanSource(source), sc.ReceivedAt.UTC()
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list scans: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// Findings returns the findings across scans, by agent and column: the
// open ones, or all with covered.
func (s *Store) Findings(ctx context.Context, covered bool) ([]Finding, error) {
	rows, err := s.pool.Query(ctx, `SELECT agent, finding, first_seen, last_seen, seen, covered_at, covered_by, covered_job
		FROM nopii_dashboard.findings WHERE $1 OR covered_at IS NULL
		ORDER BY agent, schema_name, table_name, column_name`, covered)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []Finding{}
	for rows.Next() {
		var f Finding
		var b []byte
		if err := rows.Scan(&f.Agent, &b, &f.FirstSeen, &f.LastSeen, &f.Seen, &f.CoveredAt, &f.CoveredBy, &f.CoveredJob); err != nil {
			return nil, fmt.Errorf("list findings: %w", err)
		}
		if err := json.Unmarshal(b, &f.ColumnFinding); err != nil {
			return nil, fmt.Errorf("list findings: %w", err)
		}
		f.FirstSeen, f.LastSeen = f.FirstSeen.UTC(), f.LastSeen.UTC()
		if f.CoveredAt != nil {
			t := f.CoveredAt.UTC()
			f.CoveredAt = &t
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list findings: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// Unruled returns the columns runs copied without a rule (the guard judged
// them PII; on_unclassified: warn let their table through) in the jobs that
// started at or after since, the most recently copied first.
func (s *Store) Unruled(ctx context.Context, since time.Time) ([]Unruled, error) {
	rows, err := s.pool.Query(ctx, `
		WITH c AS (
			SELECT j.agent, j.workflow, j.job_id::text AS job_id, j.started_at,
				coalesce(t->>'input', '') AS input, t->>'table' AS tbl, coalesce(t->'warnings', '[]') AS warnings,
				f AS finding, f->>'column' AS col
			FROM nopii_dashboard.jobs j,
				jsonb_array_elements(j.report->'tables') t,
				jsonb_array_elements(coalesce(t->'unclassified', '[]')) f
			WHERE j.started_at >= $1 AND coalesce(t->>'error', '') = ''
		)
		SELECT DISTINCT ON (agent, workflow, input, tbl, col)
			agent, workflow, input, tbl, finding, warnings, job_id,
			min(started_at) OVER w, max(started_at) OVER w, count(*) OVER w
		FROM c
		WINDOW w AS (PARTITION BY agent, workflow, input, tbl, col)
		ORDER BY agent, workflow, input, tbl, col, started_at DESC, job_id DESC`, since)
	if err != nil {
		return nil, fmt.Errorf("list unruled columns: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []Unruled{}
	for rows.Next() {
		var u Unruled
		var finding, warnings []byte
		if err := rows.Scan(&u.Agent, &u.Workflow, &u.Input, &u.Table, &finding, &warnings, &u.LastJob, &u.FirstSeen, &u.LastSeen, &u.Runs); err != nil {
			return nil, fmt.Errorf("list unruled columns: %w", err)
		}
		if err := json.Unmarshal(finding, &u.ColumnFinding); err != nil {
			return nil, fmt.Errorf("list unruled columns: %w", err)
		}
		if err := json.Unmarshal(warnings, &u.Warnings); err != nil {
			return nil, fmt.Errorf("list unruled columns: %w", err)
		}
		u.FirstSeen, u.LastSeen = u.FirstSeen.UTC(), u.LastSeen.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unruled columns: %w", pgconnect.SafeError(err))
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].LastSeen.After(out[k].LastSeen) })
	return out, nil
}

// checkName accepts agent names that read well in a page and a log line.
func checkName(name string) error {
	if name == "" || len(name) > 100 {
		return errors.New("agent name must be 1 to 100 characters")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("agent name must not contain control characters")
		}
	}
	return nil
}
