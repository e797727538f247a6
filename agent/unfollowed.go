package agent

import (
	"fmt"
	"strings"

	"github.com/nopii/nopii"
)

// UnfollowedColumn is a column that looks like a reference to a subject's
// table (customer_id, user_id … of the key's type) but has neither a
// foreign key nor a virtual one: subject requests do not follow it, so
// the subject's rows there are neither found nor forgotten. Add is the
// entry to paste under the table in the configuration.
type UnfollowedColumn struct {
	Input      string `json:"input"`
	Table      string `json:"table"`
	Column     string `json:"column"`
	Type       string `json:"type"`
	References string `json:"references"` // the subject's table
	Add        string `json:"add"`        // the references: entry to add under table
}

// referenceNames are the column names that read as a reference to
// table: <table>_id, its singular's, and user_id (a subject's table is a
// table of people).
func referenceNames(table string) []string {
	names := []string{table + "_id", "user_id"}
	for _, suffix := range []string{"ies", "es", "s"} {
		if stem, ok := strings.CutSuffix(table, suffix); ok && stem != "" {
			if suffix == "ies" {
				stem += "y"
			}
			names = append(names, stem+"_id")
		}
	}
	return names
}

// unfollowed lists the columns of the described tables that look like
// references to a seed table's single-column key and that no reference
// (catalog or virtual) covers.
func unfollowed(input string, seeds []*nopii.Table, tables []*nopii.Table, refs []nopii.Reference) []UnfollowedColumn {
	covered := func(t nopii.TableName, c string) bool {
		for _, r := range refs {
			if r.From == t && len(r.Columns) == 1 && r.Columns[0] == c {
				return true
			}
		}
		return false
	}
	var out []UnfollowedColumn
	seen := map[string]bool{}
	for _, s := range seeds {
		if len(s.PrimaryKey) != 1 {
			continue
		}
		key, _ := s.Column(s.PrimaryKey[0])
		names := referenceNames(s.Name.Name)
		for _, t := range tables {
			for _, c := range t.Columns {
				if t.Name == s.Name && c.Name == key.Name {
					continue
				}
				if !containsName(names, c.Name) || c.Type == nil || key.Type == nil ||
					c.Type.Underlying().Name != key.Type.Underlying().Name || covered(t.Name, c.Name) {
					continue
				}
				id := t.Name.String() + "." + c.Name
				if seen[id] {
					continue
				}
				seen[id] = true
				out = append(out, UnfollowedColumn{Input: input, Table: t.Name.String(), Column: c.Name, Type: c.TypeSQL,
					References: s.Name.String(),
					Add:        fmt.Sprintf("references:\n  - { columns: [%s], table: %s, to: [%s] }", c.Name, s.Name, key.Name)})
			}
		}
	}
	return out
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}
