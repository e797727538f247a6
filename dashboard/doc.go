// Package dashboard is the nopii dashboard: agents post heartbeats, job
// reports and scanner findings to its JSON API with a per-agent bearer
// token, and people read server-rendered pages (Agents, Jobs and a job's
// runs, PII scanner, Unruled columns, Alerts) and the read API with the
// admin token. Alerts (failed runs, guard failures, silent agents, slots
// past their WAL warning) are posted to webhooks, with retries and a
// delivery log (docs/dashboard.md).
//
// Everything is kept in PostgreSQL, in schema nopii_dashboard, whose
// migrations the Store applies when it opens. Agent tokens are stored as
// SHA-256 digests only; the token itself is printed once, by
// `nopii dashboard token create`, and never logged.
//
// The messages agents post are package internal/wire's (wire.Heartbeat,
// wire.Job, wire.ScanReport), the same declarations the agent encodes: a
// field added there is a field here, and TestWireRoundTrip posts each
// through the real API and compares what the read API gives back. The
// package never imports package agent (its tests do, to post with the
// agent's own Reporter); its own types are its views of what it stored:
// Agent, Scan, Finding, Unruled, Alert.
package dashboard
