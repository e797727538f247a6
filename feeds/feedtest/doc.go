// Package feedtest is the conformance suite that every nopii.Feed passes,
// after Litestream's RunWithReplicaClient: the same loads, aborts, deltas
// and state checks, run against the twin, the S3 lake and the files lake,
// and read back through each feed's own Reader.
//
//	func TestFeed(t *testing.T) {
//		feedtest.Run(t, func(t *testing.T) (nopii.Feed, feedtest.Reader) {
//			… open a fresh, empty feed for workflow feedtest.Workflow …
//		})
//	}
//
// Rows go in as the agent sends them: PostgreSQL binary values, built here
// with pgtype so that the suite needs no database, and the key text last.
// They come back as text, compared with what PostgreSQL itself prints.
package feedtest
