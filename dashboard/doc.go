// Package dashboard is the nopii dashboard: agents post heartbeats, job
// reports and scanner findings to its JSON API with a per-agent bearer
// token, and people read server-rendered pages (Agents, Jobs, Scans) and the
// read API with the admin token.
//
// Everything is kept in PostgreSQL, in schema nopii_dashboard, whose
// migrations the Store applies when it opens. Agent tokens are stored as
// SHA-256 digests only; the token itself is printed once, by
// `nopii dashboard token create`, and never logged.
//
// The package defines its own wire types (Heartbeat, Job, TableReport,
// Finding) matching the JSON the agent posts; it does not import package
// agent, so that the two can be deployed and versioned apart.
package dashboard
