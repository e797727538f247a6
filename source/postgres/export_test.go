package postgres

import "github.com/nopii/nopii"

// MembersQuery is the query a stream's subset check runs for t's keys
// ($1, text[]): correlated, or as a copy renders the conditions.
func MembersQuery(sub *nopii.Subset, t *nopii.Table, correlated bool) string {
	p := newSubsetPlan(sub)
	p.correlated = correlated
	return membersQuery(p, t)
}
