package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nopii/nopii"
)

// The state of a workflow's tables lives next to the data, in
// <workflow>/_nopii/state.json: one entry per input and source table.

const stateVersion = 1

type stateFile struct {
	Version int          `json:"version"`
	Tables  []stateEntry `json:"tables"`
}

type stateEntry struct {
	Input  string            `json:"input"`
	Table  string            `json:"table"`  // in the source
	Target nopii.TableName   `json:"target"` // in the lake
	State  *nopii.TableState `json:"state"`
}

// StateKey returns the key of a workflow's state object.
func StateKey(workflow string) string { return workflow + "/_nopii/state.json" }

func (f *Feed) readState(ctx context.Context) (*stateFile, error) {
	key := StateKey(f.opts.Workflow)
	rc, err := f.store.Get(ctx, key)
	if isNotExist(err) {
		return &stateFile{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return &s, nil
}

// saveState records a table's state: a read-modify-write of state.json,
// serialized by the feed's mutex (tables commit in parallel).
func (f *Feed) saveState(ctx context.Context, target nopii.TableName, st *nopii.TableState) error {
	if st == nil {
		return nil
	}
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	s, err := f.readState(ctx)
	if err != nil {
		return err
	}
	e := stateEntry{Input: st.Input, Table: st.Table.String(), Target: target, State: st}
	i := slices.IndexFunc(s.Tables, func(x stateEntry) bool { return x.Input == e.Input && x.Table == e.Table })
	if i >= 0 {
		s.Tables[i] = e
	} else {
		s.Tables = append(s.Tables, e)
	}
	slices.SortFunc(s.Tables, func(a, b stateEntry) int {
		if c := strings.Compare(a.Input, b.Input); c != 0 {
			return c
		}
		return strings.Compare(a.Table, b.Table)
	})
	s.Version = stateVersion
	if err := putJSON(ctx, f.store, StateKey(f.opts.Workflow), s); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// State implements nopii.Feed. A state whose table has no manifest any
// more is no state: the next run copies the table in full.
func (f *Feed) State(ctx context.Context, k nopii.StateKey) (*nopii.TableState, error) {
	if f.err != nil {
		return nil, f.err
	}
	if k.Workflow != f.opts.Workflow {
		return nil, nil
	}
	s, err := f.readState(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.opts.Kind, err)
	}
	table := k.Table.String()
	i := slices.IndexFunc(s.Tables, func(x stateEntry) bool { return x.Input == k.Input && x.Table == table })
	if i < 0 || s.Tables[i].State == nil {
		return nil, nil
	}
	rc, err := f.store.Get(ctx, TableDir(f.opts.Workflow, s.Tables[i].Target)+ManifestName)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: look up the manifest of %s: %w", f.opts.Kind, s.Tables[i].Target, err)
	}
	rc.Close()
	return s.Tables[i].State, nil
}
