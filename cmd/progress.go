package cmd

// The CLI's progress bars: one per table on a terminal; off a terminal a
// log line when a table starts and, every ten seconds, how far it got,
// through the run's logger so that JSON logs stay JSON. progressBars is
// the CLI's agent.Observer.

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nopii/nopii/agent"
)

// progressBars follows a run. Create it with newProgressBars, Stop it when the run ends.
type progressBars struct {
	w     io.Writer
	log   *slog.Logger
	tty   bool
	mu    sync.Mutex
	bars  []*progressBar
	index map[string]*progressBar
	drawn int // lines drawn last time, to move the cursor back over them
	stop  chan struct{}
	done  chan struct{}
}

type progressBar struct {
	name     string
	est      int64
	rows     int64
	start    time.Time
	finished bool
	err      string
	secs     float64
	logged   time.Time
}

var _ agent.Observer = (*progressBars)(nil)

// newProgressBars returns bars drawing on w when tty, else logging to log.
func newProgressBars(w io.Writer, tty bool, log *slog.Logger) *progressBars {
	b := &progressBars{w: w, log: log, tty: tty, index: map[string]*progressBar{}, stop: make(chan struct{}), done: make(chan struct{})}
	if tty {
		go b.loop()
	} else {
		close(b.done)
	}
	return b
}

func (b *progressBars) loop() {
	defer close(b.done)
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.mu.Lock()
			b.draw()
			b.mu.Unlock()
		case <-b.stop:
			b.mu.Lock()
			b.draw()
			b.mu.Unlock()
			return
		}
	}
}

// Stop draws the final state and stops redrawing.
func (b *progressBars) Stop() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

func barKey(input, table string) string { return input + "/" + table }

// TableStarted implements agent.Observer.
func (b *progressBars) TableStarted(input, table string, est int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := &progressBar{name: input + " " + table, est: est, start: time.Now()}
	b.bars = append(b.bars, br)
	b.index[barKey(input, table)] = br
	br.logged = br.start
	if !b.tty {
		b.log.Info("copying table", "input", input, "table", table, "estimated_rows", max(est, 0))
	}
}

// TableProgress implements agent.Observer.
func (b *progressBars) TableProgress(input, table string, rows int64) {
	b.mu.Lock()
	if br := b.index[barKey(input, table)]; br != nil {
		br.rows = rows
		if !b.tty && time.Since(br.logged) >= 10*time.Second {
			br.logged = time.Now()
			b.log.Info("copy progress", "input", input, "table", table, "rows", rows, "estimated_rows", max(br.est, 0))
		}
	}
	b.mu.Unlock()
}

// TableFinished implements agent.Observer.
func (b *progressBars) TableFinished(r agent.TableReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.index[barKey(r.Input, r.Table)]
	if br == nil {
		return
	}
	br.finished, br.rows, br.err, br.secs = true, r.Rows, r.Error, r.Seconds
	// Off a terminal the agent's own log line reports the end of the table.
}

const width = 30

func (b *progressBars) draw() {
	var s strings.Builder
	if b.drawn > 0 {
		fmt.Fprintf(&s, "\x1b[%dA", b.drawn)
	}
	for _, br := range b.bars {
		s.WriteString("\x1b[2K")
		s.WriteString(br.line())
		s.WriteByte('\n')
	}
	b.drawn = len(b.bars)
	io.WriteString(b.w, s.String())
}

func (br *progressBar) line() string {
	frac := 0.0
	switch {
	case br.finished && br.err == "":
		frac = 1
	case br.est > 0:
		frac = min(float64(br.rows)/float64(br.est), 0.99)
	}
	fill := int(frac * width)
	status := fmt.Sprintf("%3.0f%%", frac*100)
	secs := br.secs
	if !br.finished {
		secs = time.Since(br.start).Seconds()
	}
	rate := 0.0
	if secs > 0 {
		rate = float64(br.rows) / secs
	}
	tail := fmt.Sprintf("%d rows  %.0f rows/s  %.1fs", br.rows, rate, secs)
	if br.err != "" {
		status, tail = "FAIL", tail+"  "+firstLineOf(br.err)
	}
	return fmt.Sprintf("%-40s [%s%s] %s %s", clipText(br.name, 40), strings.Repeat("=", fill), strings.Repeat(" ", width-fill), status, tail)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return clipText(s, 80)
}
