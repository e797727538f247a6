package agent

import "github.com/nopii/nopii"

// generatedComputer is a feed that computes stored generated columns
// itself (a faithful twin): when every feed does, the source sends no
// values for them.
type generatedComputer interface {
	ComputesGenerated() bool
}

func computesGenerated(feeds []nopii.Feed) bool {
	for _, f := range feeds {
		if g, ok := f.(generatedComputer); !ok || !g.ComputesGenerated() {
			return false
		}
	}
	return len(feeds) > 0
}

// schemaNoter is a load that says what it left out of the source's schema
// (a constraint the rows do not satisfy, a default the twin cannot take),
// and why: the table's report carries it.
type schemaNoter interface {
	Notes() []string
}
