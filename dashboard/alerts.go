package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/human"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/wire"
)

// AlertKind is what an alert is about.
type AlertKind string

// The kinds of alerts (docs/dashboard.md).
const (
	AlertRunFailed   AlertKind = "run_failed"   // a run ended failed
	AlertGuardFailed AlertKind = "guard_failed" // a run failed because the guard stopped a table
	AlertSilent      AlertKind = "agent_silent" // no heartbeat for two intervals
	AlertSlotWAL     AlertKind = "slot_wal"     // a replication slot retains more WAL than its slot_wal_warn
)

// Alert is one event posted to the webhooks, with its deliveries.
type Alert struct {
	ID         int64      `json:"id"`
	Kind       AlertKind  `json:"kind"`
	Agent      string     `json:"agent"`
	Workflow   string     `json:"workflow,omitempty"`
	JobID      string     `json:"job_id,omitempty"`
	Message    string     `json:"message"`
	CreatedAt  time.Time  `json:"created_at"`
	Deliveries []Delivery `json:"deliveries"`
}

// DeliveryStatus is where an alert's delivery to one webhook stands.
type DeliveryStatus string

// The statuses of a delivery.
const (
	DeliveryPending   DeliveryStatus = "pending"   // not sent yet, or to be retried
	DeliveryDelivered DeliveryStatus = "delivered" // the webhook answered 2xx
	DeliveryFailed    DeliveryStatus = "failed"    // every attempt failed
)

// Delivery is an alert's delivery to one webhook: its log.
type Delivery struct {
	// Webhook names the webhook by format and host only: a webhook URL's
	// path is a secret (Slack's are).
	Webhook   string         `json:"webhook"`
	Status    DeliveryStatus `json:"status"`
	Attempts  int            `json:"attempts"`
	LastCode  int            `json:"last_code,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
	Log       []Attempt      `json:"log"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	At    time.Time `json:"at"`
	Code  int       `json:"code,omitempty"`
	Error string    `json:"error,omitempty"`
}

// WebhookFormat is the body an alert is posted as.
type WebhookFormat string

// The formats of a webhook's body.
const (
	// WebhookJSON posts {"kind","agent","workflow","job_id","message",
	// "created_at","alert_id"}.
	WebhookJSON WebhookFormat = "json"
	// WebhookSlack posts {"text": "…"}, as Slack's incoming webhooks (and
	// Mattermost's, Rocket.Chat's…) take it.
	WebhookSlack WebhookFormat = "slack"
)

// Webhook is a URL alerts are posted to.
type Webhook struct {
	URL    string
	Format WebhookFormat
}

// ParseWebhook reads "URL" or "FORMAT=URL" (json=… or slack=…); a URL
// without a format gets def. Errors never contain the URL.
func ParseWebhook(s string, def WebhookFormat) (Webhook, error) {
	w := Webhook{URL: strings.TrimSpace(s), Format: def}
	if f, rest, ok := strings.Cut(w.URL, "="); ok && (f == string(WebhookJSON) || f == string(WebhookSlack)) {
		w.Format, w.URL = WebhookFormat(f), rest
	}
	if w.Format != WebhookJSON && w.Format != WebhookSlack {
		return w, fmt.Errorf("webhook format %q: want json or slack", w.Format)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return w, errors.New("webhook: want an http:// or https:// URL (not shown: it may hold a secret)")
	}
	return w, nil
}

// String is the webhook's format and host, which may be logged: never
// its path, query or user info.
func (w Webhook) String() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return string(w.Format) + " (unreadable URL)"
	}
	return string(w.Format) + " " + u.Scheme + "://" + u.Host
}

// id names the webhook in the deliveries table without its URL.
func (w Webhook) id() string {
	h := sha256.Sum256([]byte(string(w.Format) + " " + w.URL))
	return hex.EncodeToString(h[:8])
}

// Alert defaults.
const (
	defaultAlertAttempts = 6
	defaultAlertBackoff  = 10 * time.Second
	maxAlertBackoff      = 10 * time.Minute
	defaultAlertPoll     = 5 * time.Second
	deliveryLease        = time.Minute // longer than a send's timeout
)

// LogKeyWebhook is the log key of a webhook (its String).
const LogKeyWebhook = "webhook"

// HeaderAlertID carries the alert's id on every post of it to a webhook.
const HeaderAlertID = "X-Nopii-Alert-Id"

// raise records an alert once per key, with a pending delivery to each
// webhook, and wakes the sender. It reports whether the alert is new.
func (s *Server) raise(ctx context.Context, key string, a Alert) (bool, error) {
	a.CreatedAt = s.opts.Now().UTC()
	var fresh bool
	err := pgx.BeginFunc(ctx, s.store.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO nopii_dashboard.alerts (dedupe_key, kind, agent, workflow, job_id, message, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
			key, a.Kind, a.Agent, a.Workflow, a.JobID, a.Message, a.CreatedAt).Scan(&a.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		fresh = true
		for _, w := range s.opts.Webhooks {
			if _, err := tx.Exec(ctx, `INSERT INTO nopii_dashboard.deliveries (alert_id, webhook, target, status, next_attempt_at, updated_at)
				VALUES ($1, $2, $3, 'pending', clock_timestamp(), clock_timestamp())`, a.ID, w.id(), w.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("raise alert: %w", pgconnect.SafeError(err))
	}
	if fresh {
		s.log.Warn("alert", "kind", string(a.Kind), LogKeyAgent, a.Agent, "workflow", a.Workflow, "message", a.Message)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return fresh, nil
}

// jobAlerts raises the alert of a job that ended failed: guard_failed when
// the guard stopped a table, else run_failed.
func (s *Server) jobAlerts(ctx context.Context, j wire.Job) error {
	if j.Status != wire.StatusFailed {
		return nil
	}
	var guardedCols, errs []string
	for _, t := range j.Tables {
		if guarded(t) {
			for _, f := range t.Unclassified {
				guardedCols = append(guardedCols, fmt.Sprintf("%s.%s (%s)", t.Table, f.Column, f.Kind))
			}
		} else if t.Error != "" {
			errs = append(errs, t.Table+": "+t.Error)
		}
	}
	if j.Error != "" {
		errs = append([]string{j.Error}, errs...)
	}
	a := Alert{Kind: AlertRunFailed, Agent: j.Agent, Workflow: j.Workflow, JobID: j.JobID}
	if len(guardedCols) > 0 {
		a.Kind = AlertGuardFailed
		look := "looks like personal data and has no rule; nothing of its table was written"
		if len(guardedCols) > 1 {
			look = "look like personal data and have no rule; nothing of those tables was written"
		}
		a.Message = fmt.Sprintf("the guard stopped workflow %s on agent %s: %s %s", j.Workflow, j.Agent, strings.Join(guardedCols, ", "), look)
		if len(errs) > 0 {
			a.Message += "; also failed: " + strings.Join(errs, "; ")
		}
	} else {
		a.Message = fmt.Sprintf("run of workflow %s on agent %s failed", j.Workflow, j.Agent)
		if len(errs) > 0 {
			a.Message += ": " + strings.Join(errs, "; ")
		}
	}
	_, err := s.raise(ctx, "job:"+j.JobID, a)
	return err
}

// walAlerts raises an alert when an input's slot retains more WAL than
// its slot_wal_warn: once per episode, until a heartbeat shows it below.
func (s *Server) walAlerts(ctx context.Context, hb wire.Heartbeat) error {
	for _, wf := range hb.Workflows {
		for _, in := range wf.Inputs {
			key := "wal:" + hb.Agent + "/" + wf.Name + "/" + in.Name
			if in.SlotWALWarnBytes <= 0 || in.SlotRetainedBytes <= in.SlotWALWarnBytes {
				if _, err := s.store.pool.Exec(ctx, `DELETE FROM nopii_dashboard.alert_state WHERE key = $1`, key); err != nil {
					return fmt.Errorf("slot alert state: %w", pgconnect.SafeError(err))
				}
				continue
			}
			var since time.Time
			err := s.store.pool.QueryRow(ctx, `INSERT INTO nopii_dashboard.alert_state (key, since) VALUES ($1, clock_timestamp())
				ON CONFLICT (key) DO NOTHING RETURNING since`, key).Scan(&since)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // this episode was alerted
			}
			if err != nil {
				return fmt.Errorf("slot alert state: %w", pgconnect.SafeError(err))
			}
			msg := fmt.Sprintf("the replication slot of input %s (workflow %s, agent %s) retains %s of WAL on the source, past its slot_wal_warn of %s (%s behind): check that the stream keeps up, or drop the slot of a workflow no longer run",
				in.Name, wf.Name, hb.Agent, human.Bytes(in.SlotRetainedBytes), human.Bytes(in.SlotWALWarnBytes), human.Bytes(in.CDCLagBytes))
			if _, err := s.raise(ctx, fmt.Sprintf("%s:%d", key, since.UnixNano()), Alert{Kind: AlertSlotWAL, Agent: hb.Agent, Workflow: wf.Name, Message: msg}); err != nil {
				return err
			}
		}
	}
	return nil
}

// silentAlerts raises an alert for each silent agent, once per silence.
func (s *Server) silentAlerts(ctx context.Context) error {
	now := s.opts.Now()
	agents, err := s.store.Agents(ctx, now)
	if err != nil {
		return err
	}
	for _, a := range agents {
		// A dashboard that was down itself heard no heartbeat: give each
		// agent two intervals after the start to be heard from.
		if a.State != AgentSilent || now.Sub(s.started) < time.Duration(2*a.IntervalSeconds*float64(time.Second)) {
			continue
		}
		msg := fmt.Sprintf("agent %s is silent: no heartbeat since %s (it beats every %s)",
			a.Name, a.LastSeen.Format(time.RFC3339), time.Duration(a.IntervalSeconds*float64(time.Second)))
		if _, err := s.raise(ctx, fmt.Sprintf("silent:%s:%d", a.Name, a.LastSeen.UnixNano()), Alert{Kind: AlertSilent, Agent: a.Name, Message: msg}); err != nil {
			return err
		}
	}
	return nil
}

// RunAlerts watches for silent agents and delivers pending alerts to the
// webhooks, with retries, until ctx is done. Serve runs it; several
// dashboards over one database share the work.
func (s *Server) RunAlerts(ctx context.Context) {
	tick := time.NewTicker(s.opts.AlertPoll)
	defer tick.Stop()
	for {
		if err := s.silentAlerts(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("check silent agents", "err", err)
		}
		if err := s.deliverDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("deliver alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// deliverDue sends the deliveries whose time has come, each once: a lease
// (next_attempt_at moved on) keeps another dashboard from sending it too.
func (s *Server) deliverDue(ctx context.Context) error {
	for {
		rows, err := s.store.pool.Query(ctx, `
			UPDATE nopii_dashboard.deliveries d SET next_attempt_at = clock_timestamp() + $1::interval
			FROM nopii_dashboard.alerts a
			WHERE a.id = d.alert_id AND d.id IN (
				SELECT id FROM nopii_dashboard.deliveries
				WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
				ORDER BY next_attempt_at, id LIMIT 20 FOR UPDATE SKIP LOCKED)
			RETURNING d.id, d.webhook, d.attempts, a.id, a.kind, a.agent, a.workflow, a.job_id, a.message, a.created_at`,
			deliveryLease.String())
		if err != nil {
			return pgconnect.SafeError(err)
		}
		type due struct {
			id       int64
			webhook  string
			attempts int
			alert    Alert
		}
		var batch []due
		for rows.Next() {
			var d due
			var kind string
			if err := rows.Scan(&d.id, &d.webhook, &d.attempts, &d.alert.ID, &kind, &d.alert.Agent, &d.alert.Workflow,
				&d.alert.JobID, &d.alert.Message, &d.alert.CreatedAt); err != nil {
				rows.Close()
				return err
			}
			d.alert.Kind = AlertKind(kind)
			batch = append(batch, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return pgconnect.SafeError(err)
		}
		if len(batch) == 0 {
			return nil
		}
		for _, d := range batch {
			if ctx.Err() != nil {
				return nil
			}
			var hook *Webhook
			for i := range s.opts.Webhooks {
				if s.opts.Webhooks[i].id() == d.webhook {
					hook = &s.opts.Webhooks[i]
				}
			}
			at := Attempt{At: time.Now().UTC()}
			if hook == nil {
				at.Error = "webhook no longer configured"
			} else {
				at.Code, at.Error = s.send(ctx, *hook, d.alert)
			}
			if err := s.recordAttempt(ctx, d.id, d.attempts+1, at); err != nil {
				return err
			}
			switch {
			case at.Error == "":
				s.log.Info("alert delivered", LogKeyWebhook, hook.String(), "alert", d.alert.ID, "attempt", d.attempts+1)
			case hook == nil || d.attempts+1 >= s.opts.AlertAttempts:
				s.log.Error("alert not delivered: giving up", LogKeyWebhook, d.webhook, "alert", d.alert.ID, "attempts", d.attempts+1, "err", at.Error)
			default:
				s.log.Warn("alert delivery failed; will retry", LogKeyWebhook, hook.String(), "alert", d.alert.ID, "attempt", d.attempts+1, "err", at.Error)
			}
		}
	}
}

// recordAttempt logs an attempt and moves the delivery on: delivered,
// failed after the last attempt, or pending until its backoff is over.
func (s *Server) recordAttempt(ctx context.Context, id int64, attempts int, at Attempt) error {
	entry, err := json.Marshal([]Attempt{at})
	if err != nil {
		return err
	}
	status := DeliveryPending
	switch {
	case at.Error == "":
		status = DeliveryDelivered
	case attempts >= s.opts.AlertAttempts || at.Error == "webhook no longer configured":
		status = DeliveryFailed
	}
	backoff := s.opts.AlertBackoff
	for i := 1; i < attempts && backoff < maxAlertBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, maxAlertBackoff)
	_, err = s.store.pool.Exec(ctx, `UPDATE nopii_dashboard.deliveries SET attempts = $2, status = $3, last_code = $4, last_error = $5,
		log = log || $6::jsonb, updated_at = $7, next_attempt_at = clock_timestamp() + $8::interval WHERE id = $1`,
		id, attempts, status, at.Code, at.Error, entry, at.At, backoff.String())
	if err != nil {
		return fmt.Errorf("record delivery: %w", pgconnect.SafeError(err))
	}
	return nil
}

// send posts the alert to the webhook and returns the status code and
// what went wrong, "" when it was delivered. The error never holds the
// URL: a transport error loses its url.Error wrapper.
func (s *Server) send(ctx context.Context, w Webhook, a Alert) (int, string) {
	var body any
	switch w.Format {
	case WebhookSlack:
		text := fmt.Sprintf("nopii %s: %s", strings.ReplaceAll(string(a.Kind), "_", " "), a.Message)
		body = map[string]string{"text": text}
	default:
		body = map[string]any{"kind": a.Kind, "agent": a.Agent, "workflow": a.Workflow, "job_id": a.JobID,
			"message": a.Message, "created_at": a.CreatedAt.UTC(), "alert_id": a.ID}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return 0, "cannot build the request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nopii-dashboard")
	// The same alert retried has the same id: a receiver may drop repeats.
	req.Header.Set(HeaderAlertID, strconv.FormatInt(a.ID, 10))
	resp, err := s.hooks.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Sprintf("webhook answered %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// Alerts returns the newest n alerts with their deliveries, newest first.
func (s *Store) Alerts(ctx context.Context, n int) ([]Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.kind, a.agent, a.workflow, a.job_id, a.message, a.created_at,
			coalesce(jsonb_agg(jsonb_build_object('webhook', d.target, 'status', d.status, 'attempts', d.attempts,
				'last_code', d.last_code, 'last_error', d.last_error, 'updated_at', d.updated_at, 'log', d.log)
				ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '[]')
		FROM (SELECT * FROM nopii_dashboard.alerts ORDER BY created_at DESC, id DESC LIMIT $1) a
		LEFT JOIN nopii_dashboard.deliveries d ON d.alert_id = a.id
		GROUP BY a.id, a.kind, a.agent, a.workflow, a.job_id, a.message, a.created_at
		ORDER BY a.created_at DESC, a.id DESC`, n)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		var a Alert
		var kind string
		var deliveries []byte
		if err := rows.Scan(&a.ID, &kind, &a.Agent, &a.Workflow, &a.JobID, &a.Message, &a.CreatedAt, &deliveries); err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		if err := json.Unmarshal(deliveries, &a.Deliveries); err != nil {
			return nil, fmt.Errorf("list alerts: deliveries of %d: %w", a.ID, err)
		}
		a.Kind, a.CreatedAt = AlertKind(kind), a.CreatedAt.UTC()
		for i := range a.Deliveries {
			a.Deliveries[i].UpdatedAt = a.Deliveries[i].UpdatedAt.UTC()
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", pgconnect.SafeError(err))
	}
	return out, nil
}
