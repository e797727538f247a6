package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nopii/nopii/internal/pgconnect"
)

// ErrNotFound is returned when a named thing (an agent's tokens) does not exist.
var ErrNotFound = errors.New("not found")

// ErrJobOwner is returned by Store.PutJob when the job id belongs to
// another agent.
var ErrJobOwner = errors.New("job belongs to another agent")

// scansKept bounds the scan reports kept per agent.
const scansKept = 20

// Store keeps the dashboard's data in PostgreSQL, schema nopii_dashboard.
// Its methods are safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to dsn and applies the schema migrations.
// Errors never contain the password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dashboard database: parse dsn: %w", err)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["application_name"] = "nopii-dashboard"
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dashboard database: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
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
func (s *Store) PutHeartbeat(ctx context.Context, hb Heartbeat, now time.Time) error {
	wf := hb.Workflows
	if wf == nil {
		wf = []WorkflowStatus{}
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

// Agents returns the agents by name, healthy when their last heartbeat is
// younger than two intervals at now.
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
		a.Healthy = Healthy(a.LastSeen, a.IntervalSeconds, now)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// Healthy reports whether a heartbeat at lastSeen, from an agent beating
// every interval seconds, is younger than two intervals at now.
func Healthy(lastSeen time.Time, intervalSeconds float64, now time.Time) bool {
	return now.Sub(lastSeen) < time.Duration(2*intervalSeconds*float64(time.Second))
}

// PutJob inserts the job or, for a job id already posted by the same
// agent, replaces it. A late "running" post does not overwrite a final
// status. It returns ErrJobOwner when the id belongs to another agent.
func (s *Store) PutJob(ctx context.Context, j Job, now time.Time) error {
	if j.Tables == nil {
		j.Tables = []TableReport{}
	}
	report, err := json.Marshal(j)
	if err != nil {
		return err
	}
	var owner string
	err = s.pool.QueryRow(ctx, `
		INSERT INTO nopii_dashboard.jobs AS j (job_id, agent, workflow, status, started_at, finished_at, received_at, report)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (job_id) DO UPDATE SET workflow = EXCLUDED.workflow, status = EXCLUDED.status,
			started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
			received_at = EXCLUDED.received_at, report = EXCLUDED.report
		WHERE j.agent = EXCLUDED.agent AND NOT (j.status <> 'running' AND EXCLUDED.status = 'running')
		RETURNING agent`,
		j.JobID, j.Agent, j.Workflow, j.Status, j.StartedAt, j.FinishedAt, now, report).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		// The row exists and was left alone: whose is it?
		err = s.pool.QueryRow(ctx, `SELECT agent FROM nopii_dashboard.jobs WHERE job_id = $1`, j.JobID).Scan(&owner)
		if err == nil && owner != j.Agent {
			return ErrJobOwner
		}
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
func (s *Store) Jobs(ctx context.Context, f JobFilter) (jobs []Job, next string, err error) {
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
	out := []Job{}
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
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	if !uuidRE.MatchString(id) {
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT job_id::text, agent, workflow, status, started_at, finished_at, report
		FROM nopii_dashboard.jobs WHERE job_id = $1::uuid`, id)
	if err != nil {
		return Job{}, fmt.Errorf("read job: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Job{}, fmt.Errorf("read job: %w", pgconnect.SafeError(err))
		}
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	j, err := scanJob(rows)
	if err != nil {
		return Job{}, fmt.Errorf("read job: %w", err)
	}
	return j, nil
}

// scanJob reads a row of job_id, agent, workflow, status, started_at,
// finished_at, report: the columns win over the report's copy of them.
func scanJob(rows pgx.Rows) (Job, error) {
	var j Job
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
	j.JobID, j.Agent, j.Workflow, j.Status, j.StartedAt = id, agent, workflow, status, started.UTC()
	j.FinishedAt = nil
	if finished != nil {
		t := finished.UTC()
		j.FinishedAt = &t
	}
	if j.Tables == nil {
		j.Tables = []TableReport{}
	}
	return j, nil
}

// PutScan records a scan report and drops the agent's oldest ones beyond
// the last scansKept.
func (s *Store) PutScan(ctx context.Context, sc ScanReport, now time.Time) error {
	if sc.Findings == nil {
		sc.Findings = []Finding{}
	}
	findings, err := json.Marshal(sc.Findings)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO nopii_dashboard.scans (agent, received_at, findings) VALUES ($1, $2, $3)`, sc.Agent, now, findings); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM nopii_dashboard.scans WHERE agent = $1 AND id NOT IN (
			SELECT id FROM nopii_dashboard.scans WHERE agent = $1 ORDER BY received_at DESC, id DESC LIMIT $2)`, sc.Agent, scansKept)
		return err
	})
	if err != nil {
		return fmt.Errorf("store scan: %w", pgconnect.SafeError(err))
	}
	return nil
}

// LatestScans returns each agent's latest scan report, by agent name.
func (s *Store) LatestScans(ctx context.Context) ([]Scan, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (agent) agent, received_at, findings
		FROM nopii_dashboard.scans ORDER BY agent, received_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list scans: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []Scan{}
	for rows.Next() {
		var sc Scan
		var findings []byte
		if err := rows.Scan(&sc.Agent, &sc.ReceivedAt, &findings); err != nil {
			return nil, fmt.Errorf("list scans: %w", err)
		}
		if err := json.Unmarshal(findings, &sc.Findings); err != nil {
			return nil, fmt.Errorf("list scans: findings of %s: %w", sc.Agent, err)
		}
		sc.ReceivedAt = sc.ReceivedAt.UTC()
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list scans: %w", pgconnect.SafeError(err))
	}
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
