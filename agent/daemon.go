package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
)

// Daemon is `nopii agent`: it runs every scheduled workflow on its cron
// schedule (UTC), one run per workflow at a time, reloads the configuration
// when the file changes (a ConfigMap update), posts heartbeats and job
// reports to the dashboard, and serves /healthz, /readyz and /metrics.
type Daemon struct {
	ConfigPath string
	// Load reads and validates the configuration file.
	Load func(path string) (*config.Config, error)
	// NewRunner wires the adapters (cmd does) for one run.
	NewRunner func(log *slog.Logger, obs Observer) *Runner
	// CheckSource tells /readyz whether an input's database answers.
	CheckSource func(ctx context.Context, in *config.Input) error
	Version     string
	Logger      *slog.Logger
	// Grace is how long SIGTERM lets running copies finish before they are
	// cancelled (the feeds keep their previous versions). Default 30s.
	Grace time.Duration
	// PollEvery is how often the configuration file is checked. Default 2s.
	PollEvery time.Duration

	mu        sync.Mutex
	cfg       *config.Config
	cfgHash   [32]byte
	cfgErr    string
	sched     *cron.Cron
	entries   map[string]cron.EntryID
	running   map[string]bool
	last      map[string]WorkflowStatus
	runs      sync.WaitGroup
	runCtx    context.Context
	cancelRun context.CancelFunc
	reporter  *Reporter
	ready     readiness
	m         metrics
	followers followers
}

// followers are the goroutines that stream the cdc tables of workflows,
// one per workflow, restarted with each configuration.
type followers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type readiness struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

type metrics struct {
	reg        *prometheus.Registry
	runs       *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rows       *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	lastOK     *prometheus.GaugeVec
	hbFailures prometheus.Counter
	reloads    *prometheus.CounterVec
	cfgValid   prometheus.Gauge
	lagBytes   *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	retained   *prometheus.GaugeVec
}

func newMetrics() metrics {
	m := metrics{reg: prometheus.NewRegistry(),
		runs:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nopii_runs_total", Help: "Workflow runs by result."}, []string{"workflow", "status"}),
		skipped:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nopii_runs_skipped_total", Help: "Scheduled runs skipped because the previous run was still going, in this agent or (the workflow's run lock) elsewhere."}, []string{"workflow"}),
		duration:   prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "nopii_run_duration_seconds", Help: "Duration of workflow runs.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}, []string{"workflow"}),
		rows:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nopii_rows_copied_total", Help: "Rows read from sources and written to feeds."}, []string{"workflow", "table"}),
		bytes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nopii_bytes_copied_total", Help: "Bytes of binary COPY data read from sources."}, []string{"workflow", "table"}),
		lastOK:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nopii_last_success_timestamp_seconds", Help: "When each workflow last ran without a failure."}, []string{"workflow"}),
		hbFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "nopii_dashboard_post_failures_total", Help: "Failed posts of heartbeats and job reports."}),
		reloads:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nopii_config_reloads_total", Help: "Configuration reloads by result."}, []string{"result"}),
		cfgValid:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "nopii_config_valid", Help: "1 when the configuration file on disk is the one in force."}),
		lagBytes:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nopii_cdc_lag_bytes", Help: "WAL the source wrote after the position a cdc stream confirmed."}, []string{"workflow", "input"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nopii_cdc_lag_seconds", Help: "Age of the oldest source transaction a cdc stream has not applied yet; 0 when caught up."}, []string{"workflow", "input"}),
		retained:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nopii_cdc_slot_retained_bytes", Help: "WAL a cdc stream's replication slot keeps on the source."}, []string{"workflow", "input"}),
	}
	m.reg.MustRegister(m.runs, m.skipped, m.duration, m.rows, m.bytes, m.lastOK, m.hbFailures, m.reloads, m.cfgValid, m.lagBytes, m.lagSeconds, m.retained)
	return m
}

// Run runs the daemon until ctx is done, then stops scheduling, lets
// running copies finish within Grace, and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	if d.Grace <= 0 {
		d.Grace = 30 * time.Second
	}
	if d.PollEvery <= 0 {
		d.PollEvery = 2 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.m = newMetrics()
	d.running, d.last, d.entries = map[string]bool{}, map[string]WorkflowStatus{}, map[string]cron.EntryID{}
	d.runCtx, d.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer d.cancelRun()

	data, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := d.Load(d.ConfigPath)
	if err != nil {
		return err
	}
	d.install(cfg, sha256.Sum256(data))
	if cfg.Dashboard != nil {
		d.reporter = NewReporter(cfg.Dashboard.URL, cfg.Dashboard.Token.Reveal(), d.Logger, d.m.hbFailures.Inc)
	}
	srv, err := d.serve(cfg.Agent.Listen)
	if err != nil {
		return err
	}
	d.Logger.Info("agent started", "name", cfg.Agent.Name, "listen", cfg.Agent.Listen, "workflows", len(cfg.Workflows))

	poll := time.NewTicker(d.PollEvery)
	defer poll.Stop()
	hb := time.NewTicker(d.heartbeatInterval())
	defer hb.Stop()
	d.heartbeat()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-poll.C:
			d.reload()
		case <-hb.C:
			d.heartbeat()
		}
	}

	d.Logger.Info("stopping: no new runs; waiting for running copies", "grace", d.Grace)
	d.mu.Lock()
	stopped := d.sched.Stop()
	d.stopFollowers()
	d.mu.Unlock()
	d.followers.wg.Wait()
	<-stopped.Done()
	finished := make(chan struct{})
	go func() { d.runs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d.Grace):
		d.Logger.Warn("grace period over: cancelling running copies (feeds keep their previous versions)")
		d.cancelRun()
		<-finished
	}
	d.heartbeat()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.reporter != nil {
		d.reporter.Close(shutdown)
	}
	srv.Shutdown(shutdown)
	d.Logger.Info("agent stopped")
	return nil
}

func (d *Daemon) heartbeatInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Dashboard != nil && d.cfg.Dashboard.HeartbeatInterval > 0 {
		return d.cfg.Dashboard.HeartbeatInterval
	}
	return 30 * time.Second
}

// install puts a configuration in force and schedules its workflows.
func (d *Daemon) install(cfg *config.Config, hash [32]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sched != nil {
		d.sched.Stop() // running jobs go on; their workflow stays marked running
	}
	d.cfg, d.cfgHash, d.cfgErr = cfg, hash, ""
	d.sched = cron.New(cron.WithLocation(time.UTC))
	d.entries = map[string]cron.EntryID{}
	for _, wf := range cfg.Workflows {
		if wf.Schedule == "" {
			continue
		}
		name := wf.Name
		id, err := d.sched.AddFunc(wf.Schedule, func() { d.fire(name) })
		if err != nil { // config validated it; keep going with the rest
			d.Logger.Error("schedule rejected", LogKeyWorkflow, name, LogKeyError, err.Error())
			continue
		}
		d.entries[name] = id
	}
	d.sched.Start()
	d.m.cfgValid.Set(1)
	d.stopFollowers()
	fctx, cancel := context.WithCancel(d.runCtx)
	d.followers.cancel = cancel
	for i := range cfg.Workflows {
		wf := &cfg.Workflows[i]
		for k := range wf.Inputs {
			// One follower per input: a stream runs until the agent stops,
			// so one input's would keep the next from starting.
			if in := wf.Inputs[k]; inputHasCDC(&in) {
				one := *wf
				one.Inputs = []config.Input{in}
				d.followers.wg.Add(1)
				go d.follow(fctx, cfg, &one)
			}
		}
	}
}

// stopFollowers cancels the streams; a new follower of the same workflow
// waits for the old one's slot.
func (d *Daemon) stopFollowers() {
	if d.followers.cancel != nil {
		d.followers.cancel()
		d.followers.cancel = nil
	}
}

// hasCDC reports whether a workflow names tables in mode cdc.
func hasCDC(wf *config.Workflow) bool {
	return slices.ContainsFunc(wf.Inputs, func(in config.Input) bool { return inputHasCDC(&in) })
}

// inputHasCDC reports whether an input names tables in mode cdc.
func inputHasCDC(in *config.Input) bool {
	return slices.ContainsFunc(in.Tables, func(t config.Table) bool { return t.Mode == config.ModeCDC })
}

// follow streams the cdc tables of a workflow's one input until ctx ends,
// starting again after a failure with a growing pause (5s to a minute).
// Each stream is a job on the dashboard: running with its first copies
// once they are made, finished when the stream stops.
func (d *Daemon) follow(ctx context.Context, cfg *config.Config, wf *config.Workflow) {
	defer d.followers.wg.Done()
	log := d.Logger.With(LogKeyWorkflow, wf.Name, LogKeyInput, wf.Inputs[0].Name)
	pause := 5 * time.Second
	for ctx.Err() == nil {
		jobID, started := newJobID(), time.Now().UTC()
		obs := &followObserver{d: d, workflow: wf.Name}
		if d.reporter != nil {
			obs.job = &jobProgress{r: d.reporter, job: JobReport{JobID: jobID, Agent: cfg.Agent.Name,
				Report: Report{Workflow: wf.Name, Status: StatusRunning, StartedAt: started}}}
		}
		r := d.NewRunner(d.Logger, obs) // Run adds the workflow to its logger
		r.CDC = CDCFollow
		d.setStatus(wf.Name, StatusRunning)
		rep := r.Run(ctx, cfg, wf)
		d.m.runs.WithLabelValues(wf.Name, string(rep.Status)).Inc()
		for _, t := range rep.Tables {
			d.m.rows.WithLabelValues(wf.Name, t.Table).Add(float64(t.Rows))
		}
		d.setStatus(wf.Name, rep.Status)
		if d.reporter != nil {
			d.reporter.Job(JobReport{JobID: jobID, Agent: cfg.Agent.Name, Report: *rep})
		}
		if ctx.Err() != nil {
			log.Info("cdc stream stopped", "status", rep.Status)
			return
		}
		log.Error("cdc stream stopped; starting again", "pause", pause.String(), LogKeyError, failure(rep))
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

func (d *Daemon) setStatus(workflow string, result Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now().UTC()
	st := d.last[workflow]
	st.LastResult, st.LastRun = result, &now
	d.last[workflow] = st
}

// followObserver follows a follower's run: its stream's lag goes to
// /metrics and heartbeats, its first copies to its job on the dashboard.
type followObserver struct {
	d        *Daemon
	workflow string
	job      *jobProgress // nil without a dashboard
}

func (o *followObserver) TableStarted(string, string, int64)  {}
func (o *followObserver) TableProgress(string, string, int64) {}
func (o *followObserver) TableFinished(t TableReport) {
	if o.job != nil {
		o.job.TableFinished(t)
	}
}

func (o *followObserver) StreamLag(input string, lag Lag) {
	o.d.m.lagBytes.WithLabelValues(o.workflow, input).Set(float64(lag.Bytes))
	o.d.m.lagSeconds.WithLabelValues(o.workflow, input).Set(lag.Seconds)
	o.d.m.retained.WithLabelValues(o.workflow, input).Set(float64(lag.Retained))
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	st := o.d.last[o.workflow]
	// A new slice each time: a heartbeat being encoded holds the old one.
	in := wire.InputStatus{Name: input, CDCLagBytes: lag.Bytes, CDCLagSeconds: lag.Seconds,
		SlotRetainedBytes: lag.Retained, SlotWALWarnBytes: lag.WALWarn}
	inputs := make([]wire.InputStatus, 0, len(st.Inputs)+1)
	for _, x := range st.Inputs {
		if x.Name != input {
			inputs = append(inputs, x)
		}
	}
	st.Inputs = append(inputs, in)
	slices.SortFunc(st.Inputs, func(a, b wire.InputStatus) int { return strings.Compare(a.Name, b.Name) })
	// The workflow's line: the most behind of its inputs' streams.
	st.CDCLagBytes, st.CDCLagSeconds = 0, 0
	for _, x := range st.Inputs {
		st.CDCLagBytes, st.CDCLagSeconds = max(st.CDCLagBytes, x.CDCLagBytes), max(st.CDCLagSeconds, x.CDCLagSeconds)
	}
	o.d.last[o.workflow] = st
}

// reload checks the file; a change that parses replaces the configuration,
// one that does not is reported and the old configuration stays.
func (d *Daemon) reload() {
	data, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		d.rejectConfig(fmt.Errorf("read config: %w", err))
		return
	}
	hash := sha256.Sum256(data)
	d.mu.Lock()
	same := hash == d.cfgHash
	d.mu.Unlock()
	if same {
		return
	}
	cfg, err := d.Load(d.ConfigPath)
	if err != nil {
		d.mu.Lock()
		d.cfgHash = hash // report once per bad version, not every poll
		d.mu.Unlock()
		d.rejectConfig(err)
		return
	}
	d.install(cfg, hash)
	d.m.reloads.WithLabelValues("applied").Inc()
	d.Logger.Info("configuration reloaded", "workflows", len(cfg.Workflows))
	d.heartbeat()
}

func (d *Daemon) rejectConfig(err error) {
	d.mu.Lock()
	d.cfgErr = err.Error()
	d.mu.Unlock()
	d.m.reloads.WithLabelValues("rejected").Inc()
	d.m.cfgValid.Set(0)
	d.Logger.Error("configuration change rejected: the previous configuration stays in force", LogKeyError, err.Error())
	d.heartbeat()
}

// fire runs a workflow now unless its previous run is still going.
func (d *Daemon) fire(name string) {
	d.mu.Lock()
	cfg := d.cfg
	wf := cfg.Workflow(name)
	if wf == nil || d.running[name] {
		d.mu.Unlock()
		if wf != nil {
			d.m.skipped.WithLabelValues(name).Inc()
			d.Logger.Warn("scheduled run skipped: the previous run is still going", LogKeyWorkflow, name)
		}
		return
	}
	d.running[name] = true
	now := time.Now().UTC()
	st := d.last[name]
	before := st // what the heartbeat shows again if the run is skipped
	st.LastResult, st.LastRun = StatusRunning, &now
	d.last[name] = st
	d.runs.Add(1)
	d.mu.Unlock()
	defer d.runs.Done()

	log := d.Logger.With(LogKeyWorkflow, name)
	jobID := newJobID()
	cdc := CDCCatchUp
	if hasCDC(wf) {
		cdc = CDCSkip // a follower streams them
	}
	var obs Observer = nopObserver{}
	if d.reporter != nil {
		obs = &jobProgress{r: d.reporter, job: JobReport{JobID: jobID, Agent: cfg.Agent.Name,
			Report: Report{Workflow: name, Status: StatusRunning, StartedAt: now}}}
	}
	runner := d.NewRunner(d.Logger, obs) // Run adds the workflow to its logger, once
	runner.CDC = cdc
	// The job is posted once the run holds its feeds' run locks: a tick
	// that another run (another agent, a manual nopii run) holds them
	// through is skipped, not a failed job.
	runner.Started = func() {
		if d.reporter != nil {
			d.reporter.Job(JobReport{JobID: jobID, Agent: cfg.Agent.Name, Report: Report{Workflow: name, Status: StatusRunning, StartedAt: now}})
		}
	}
	var held *nopii.LockedError
	runner.Locked = func(err *nopii.LockedError) { held = err }
	rep := runner.Run(d.runCtx, cfg, wf)
	if held != nil {
		d.m.skipped.WithLabelValues(name).Inc()
		log.Warn("scheduled run skipped: "+held.Error(), "holder_pid", held.PID, "holder_host", held.Host, "feed", held.Feed)
		d.mu.Lock()
		d.running[name] = false
		st = d.last[name]
		st.LastResult, st.LastRun = before.LastResult, before.LastRun
		d.last[name] = st
		d.mu.Unlock()
		return
	}
	d.m.runs.WithLabelValues(name, string(rep.Status)).Inc()
	d.m.duration.WithLabelValues(name).Observe(rep.Seconds)
	for _, t := range rep.Tables {
		d.m.rows.WithLabelValues(name, t.Table).Add(float64(t.Rows))
		d.m.bytes.WithLabelValues(name, t.Table).Add(float64(t.Bytes))
	}
	if !rep.Failed() {
		d.m.lastOK.WithLabelValues(name).Set(float64(rep.FinishedAt.Unix()))
	}
	if d.reporter != nil {
		d.reporter.Job(JobReport{JobID: jobID, Agent: cfg.Agent.Name, Report: *rep})
		var found []scanner.ColumnFinding
		for _, t := range rep.Tables {
			found = append(found, t.Unclassified...)
		}
		if len(found) > 0 { // the drift guard found PII without a rule: show it on the scanner page
			d.reporter.Scan(ScanReport{Agent: cfg.Agent.Name, Findings: found, Source: wire.ScanByGuard})
		}
	}
	rows, _ := rep.Totals()
	if rep.Failed() {
		log.Error("run finished", "status", rep.Status, "tables", len(rep.Tables), "rows", rows, "seconds", rep.Seconds, LogKeyError, failure(rep))
	} else {
		log.Info("run finished", "status", rep.Status, "tables", len(rep.Tables), "rows", rows, "seconds", rep.Seconds)
	}
	d.mu.Lock()
	d.running[name] = false
	st = d.last[name]
	st.LastResult = rep.Status
	d.last[name] = st
	d.mu.Unlock()
}

// failure says why a run failed: its own error, then each failed table's.
func failure(rep *Report) string {
	msg := rep.Error
	for _, t := range rep.Tables {
		if t.Error != "" {
			msg = joinError(msg, "table "+t.Table+": "+t.Error)
		}
	}
	return msg
}

// jobProgress re-posts a running job each time one of its tables is done,
// so the dashboard's Jobs page shows how far a run got.
type jobProgress struct {
	mu  sync.Mutex
	r   *Reporter
	job JobReport
}

func (p *jobProgress) TableStarted(string, string, int64)  {}
func (p *jobProgress) TableProgress(string, string, int64) {}
func (p *jobProgress) TableFinished(t TableReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.job.Tables = append(append([]TableReport(nil), p.job.Tables...), t)
	p.r.Job(p.job)
}

func newJobID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Status returns the heartbeat the daemon would post now.
func (d *Daemon) Status() Heartbeat {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := Heartbeat{Agent: d.cfg.Agent.Name, Version: d.Version, ConfigError: d.cfgErr}
	if d.cfg.Dashboard != nil {
		h.IntervalSeconds = d.cfg.Dashboard.HeartbeatInterval.Seconds()
	}
	for _, wf := range d.cfg.Workflows {
		st := d.last[wf.Name]
		st.Name, st.Schedule = wf.Name, wf.Schedule
		if id, ok := d.entries[wf.Name]; ok {
			next := d.sched.Entry(id).Next
			if !next.IsZero() {
				st.NextRun = &next
			}
		}
		h.Workflows = append(h.Workflows, st)
	}
	return h
}

func (d *Daemon) heartbeat() {
	if d.reporter != nil {
		d.reporter.Heartbeat(d.Status())
	}
}

// serve starts /healthz, /readyz and /metrics. Nothing there shows
// configuration values: no DSNs, keys or tokens.
func (d *Daemon) serve(addr string) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.readiness(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.Logger.Error("agent http server", LogKeyError, err.Error())
		}
	}()
	return srv, nil
}

// readiness: a configuration is in force and every input's database
// answers; checked at most every 10 seconds.
func (d *Daemon) readiness(ctx context.Context) error {
	d.ready.mu.Lock()
	defer d.ready.mu.Unlock()
	if time.Since(d.ready.checked) < 10*time.Second {
		return d.ready.err
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	var errs []error
	if d.CheckSource != nil {
		for _, wf := range cfg.Workflows {
			for i := range wf.Inputs {
				in := &wf.Inputs[i]
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := d.CheckSource(cctx, in); err != nil {
					errs = append(errs, fmt.Errorf("workflow %s input %s unreachable", wf.Name, in.Name))
				}
				cancel()
			}
		}
	}
	d.ready.checked, d.ready.err = time.Now(), errors.Join(errs...)
	return d.ready.err
}
