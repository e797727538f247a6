package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
)

// The messages the agent posts (SPEC §6), declared once in package wire.
type (
	// Heartbeat is what the agent posts every heartbeat_interval.
	Heartbeat = wire.Heartbeat
	// WorkflowStatus is one workflow's line in a heartbeat.
	WorkflowStatus = wire.WorkflowStatus
	// JobReport is a Report as posted to the dashboard: once when the run
	// starts (status running) and again, with the same JobID, when it ends.
	JobReport = wire.Job
	// ScanReport is the findings of one scan.
	ScanReport = wire.ScanReport
)

// Reporter posts heartbeats and job reports to the dashboard through a
// bounded queue: a dashboard outage costs reports (the oldest are dropped,
// and counted), never a stalled copy. Failed posts are retried with backoff.
type Reporter struct {
	url, token string
	client     *http.Client
	log        *slog.Logger
	queue      chan post
	mu         sync.Mutex
	dropped    int64
	failures   func() // called on every failed post, for metrics
	done       chan struct{}
}

type post struct {
	path string
	body []byte
}

// NewReporter starts a Reporter for the dashboard at url. Close drains it.
func NewReporter(url, token string, log *slog.Logger, onFailure func()) *Reporter {
	r := &Reporter{url: strings.TrimRight(url, "/"), token: token, client: &http.Client{Timeout: 10 * time.Second},
		log: log, queue: make(chan post, 256), failures: onFailure, done: make(chan struct{})}
	go r.loop()
	return r
}

// Heartbeat queues a heartbeat.
func (r *Reporter) Heartbeat(h Heartbeat) { r.enqueue(wire.HeartbeatPath, h) }

// Job queues a job report.
func (r *Reporter) Job(j JobReport) { r.enqueue(wire.JobsPath, j) }

// Scan queues a scan report.
func (r *Reporter) Scan(s ScanReport) { r.enqueue(wire.ScansPath, s) }

// PostScan posts a scan report now and returns the dashboard's answer, for
// the CLI, which has no queue to wait on.
func (r *Reporter) PostScan(ctx context.Context, s ScanReport) error {
	if s.Findings == nil {
		s.Findings = []scanner.ColumnFinding{}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode scan report: %w", err)
	}
	if err := r.send(ctx, post{wire.ScansPath, b}); err != nil {
		return fmt.Errorf("post scan to the dashboard: %w", err)
	}
	return nil
}

func (r *Reporter) enqueue(path string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		r.log.Error("encode dashboard report", "error", err.Error())
		return
	}
	for {
		select {
		case r.queue <- post{path, b}:
			return
		default:
		}
		select { // full: drop the oldest
		case <-r.queue:
			r.mu.Lock()
			r.dropped++
			r.mu.Unlock()
		default:
		}
	}
}

// Dropped returns how many reports a full queue dropped.
func (r *Reporter) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

func (r *Reporter) loop() {
	defer close(r.done)
	for p := range r.queue {
		wait := time.Second
		for attempt := 1; ; attempt++ {
			err := r.send(context.Background(), p)
			if err == nil {
				break
			}
			if r.failures != nil {
				r.failures()
			}
			if attempt >= 5 || isClientError(err) {
				r.log.Warn("dashboard report dropped", "path", p.path, "attempts", attempt, "error", err.Error())
				break
			}
			time.Sleep(wait)
			wait = min(2*wait, 30*time.Second)
		}
	}
}

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("dashboard answered %d", int(e)) }

func isClientError(err error) bool {
	s, ok := err.(statusError)
	return ok && s >= 400 && s < 500 && s != 429
}

func (r *Reporter) send(ctx context.Context, p post) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+p.path, bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode)
	}
	return nil
}

// Close sends what is queued (bounded by ctx) and stops.
func (r *Reporter) Close(ctx context.Context) {
	close(r.queue)
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}
