package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// TestCDCSubsetProblems: a subset is streamed only when every table it
// reaches is in mode cdc, none has a window, and no rule changes a key.
func TestCDCSubsetProblems(t *testing.T) {
	name := func(n string) nopii.TableName { return nopii.TableName{Schema: "public", Name: n} }
	tests := []struct {
		name    string
		modes   map[string]string
		window  bool
		keyRule bool
		refused []string // tables refused
		want    string
	}{
		{"all cdc", map[string]string{"customer": "cdc", "orders": "cdc"}, false, false, nil, ""},
		{"none cdc", map[string]string{"customer": "delta", "orders": "full"}, false, false, nil, ""},
		{"mixed", map[string]string{"customer": "delta", "orders": "cdc"}, false, false, []string{"orders"},
			"the subset reaches public.orders in mode cdc and public.customer in other modes"},
		{"window", map[string]string{"customer": "cdc", "orders": "cdc"}, true, false, []string{"customer", "orders"},
			"public.orders has a window: rows leave a window without a change"},
		{"key rule", map[string]string{"customer": "cdc", "orders": "cdc"}, false, true, []string{"customer", "orders"},
			"public.customer's key column id has rule hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := &nopii.Subset{}
			byName := map[nopii.TableName]*job{}
			for _, n := range []string{"customer", "orders"} {
				e := &config.Table{Mode: tc.modes[n], UpdatedAt: "updated_at", Pos: config.Pos{File: "f.yaml", Line: 3, Col: 5}}
				if n == "orders" && tc.window {
					e.Window, e.WindowBy = 24*time.Hour, config.WindowByUpdatedAt
				}
				if n == "customer" && tc.keyRule {
					e.Columns = []config.ColumnRule{{Column: "id", Rule: "hash"}}
				}
				tb := &nopii.Table{Name: name(n), PrimaryKey: []string{"id"}}
				sub.Tables = append(sub.Tables, &nopii.SubsetTable{Table: tb})
				byName[tb.Name] = &job{entry: e}
			}
			got := cdcSubsetProblems(sub, byName)
			if len(got) != len(tc.refused) {
				t.Fatalf("refused %v, want %v", got, tc.refused)
			}
			for _, n := range tc.refused {
				err := got[name(n)]
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v, want it to hold %q", n, err, tc.want)
				}
			}
		})
	}
}
