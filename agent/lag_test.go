package agent

import (
	"reflect"
	"testing"

	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/wire"
)

// TestStreamLagInHeartbeat: each input's stream lag reaches the heartbeat
// as its own line, by input name, the latest report of each input
// replacing its previous one; the workflow's line has the largest lag.
func TestStreamLagInHeartbeat(t *testing.T) {
	d := &Daemon{m: newMetrics(), last: map[string]WorkflowStatus{},
		cfg: &config.Config{Workflows: []config.Workflow{{Name: "stream", Schedule: "@every 1m"}}}}
	o := &followObserver{d: d, workflow: "stream"}
	o.StreamLag("prod", Lag{Bytes: 10, Seconds: 1.5, Retained: 100, WALWarn: 1 << 30})
	held := d.Status() // a heartbeat being encoded while the next lag comes
	o.StreamLag("billing", Lag{Bytes: 5, Seconds: 0.5, Retained: 3 << 30, WALWarn: 1 << 30})
	o.StreamLag("prod", Lag{Bytes: 20, Seconds: 2.5, Retained: 200, WALWarn: 1 << 30})

	h := d.Status()
	if len(h.Workflows) != 1 {
		t.Fatalf("workflows = %+v", h.Workflows)
	}
	w := h.Workflows[0]
	want := []wire.InputStatus{
		{Name: "billing", CDCLagBytes: 5, CDCLagSeconds: 0.5, SlotRetainedBytes: 3 << 30, SlotWALWarnBytes: 1 << 30},
		{Name: "prod", CDCLagBytes: 20, CDCLagSeconds: 2.5, SlotRetainedBytes: 200, SlotWALWarnBytes: 1 << 30},
	}
	if !reflect.DeepEqual(w.Inputs, want) || w.CDCLagBytes != 20 || w.CDCLagSeconds != 2.5 {
		t.Errorf("heartbeat workflow = %+v, want inputs %+v and the largest lag", w, want)
	}
	if old := held.Workflows[0].Inputs; len(old) != 1 || old[0].CDCLagBytes != 10 {
		t.Errorf("a heartbeat taken earlier changed under its encoder: %+v", old)
	}
}
