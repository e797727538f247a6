// Package cmd is nopii's command line: a cobra tree built fresh by NewRoot
// (no globals, no init), and the one place where adapters — the PostgreSQL
// source, the feeds — are wired into the agent.
package cmd
