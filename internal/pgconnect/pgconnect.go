// Package pgconnect opens pgx connections with bounded retries, so that a
// database that is restarting or briefly unreachable does not fail a run,
// while a wrong password or a missing database fails at once.
package pgconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options bound the retries. Zero values take the defaults.
type Options struct {
	Attempts int           // default 5
	Backoff  time.Duration // first wait, doubled each time; default 500ms
	Logger   *slog.Logger
	What     string // "source prod" / "twin": named in errors and logs
	// MinServer, when set, refuses a server of an older major version, and
	// NeededFor says what needs it ("mode cdc"; default nopii).
	MinServer int
	NeededFor string
}

// ServerMajor returns the major version of the server conn is connected
// to, 0 when it cannot tell.
func ServerMajor(conn *pgconn.PgConn) int {
	return major(conn.ParameterStatus("server_version"))
}

// major reads the major version of a server_version such as
// "15.8 (Debian 15.8-1)", "9.6.24" (9) or "17devel".
func major(v string) int {
	n := 0
	for _, r := range v {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// checkServer refuses a server older than o.MinServer, saying which it is
// and what it needs; a version it cannot read passes.
func checkServer(version string, o Options) error {
	if m := major(version); o.MinServer == 0 || m == 0 || m >= o.MinServer {
		return nil
	}
	needs := o.NeededFor
	if needs == "" {
		needs = "nopii"
	}
	if v, _, ok := strings.Cut(version, " "); ok {
		version = v
	}
	return fmt.Errorf("%s runs PostgreSQL %s: %s needs PostgreSQL %d or later", o.What, version, needs, o.MinServer)
}

// SessionSettings pins what nopii's output depends on and turns off the
// timeouts a production role may carry, as pg_dump does: a long COPY must not
// hit statement_timeout, the snapshot holder must not hit
// idle_in_transaction_session_timeout, and key text (timestamps, floats in
// json_build_array) must render the same in every run.
var SessionSettings = map[string]string{
	"statement_timeout":                   "0",
	"idle_in_transaction_session_timeout": "0",
	"lock_timeout":                        "0",
	"DateStyle":                           "ISO",
	"IntervalStyle":                       "postgres",
	"TimeZone":                            "UTC",
	"extra_float_digits":                  "3",
	"application_name":                    "nopii",
}

// Connect opens a connection to dsn. Errors never contain the password.
func Connect(ctx context.Context, dsn string, o Options) (*pgx.Conn, error) {
	cfg, err := ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: parse dsn: %w", o.What, err)
	}
	return ConnectConfig(ctx, cfg, o)
}

// ConnectConfig is Connect for a configuration from ParseConfig. Its error,
// when every attempt failed, says how many were made and unwraps to the last
// one's (so Lost and Retryable see what it was); its message holds no
// password.
func ConnectConfig(ctx context.Context, cfg *pgx.ConnConfig, o Options) (*pgx.Conn, error) {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	for k, v := range SessionSettings {
		cfg.RuntimeParams[k] = v
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	wait := o.Backoff
	var last error
	attempt := 1
	for ; attempt <= o.Attempts; attempt++ {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if err := checkServer(conn.PgConn().ParameterStatus("server_version"), o); err != nil {
				conn.Close(context.Background())
				return nil, err
			}
			return conn, nil
		}
		last = err
		if !Retryable(err) || ctx.Err() != nil || attempt == o.Attempts {
			break
		}
		if o.Logger != nil {
			o.Logger.Warn("connect failed, retrying", "target", o.What, "attempt", attempt, "wait", wait, "error", Describe(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", o.What, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
	msg := fmt.Sprintf("connect to %s (host %s port %d db %s user %s): %s", o.What, cfg.Host, cfg.Port, cfg.Database, cfg.User, Describe(last))
	if attempt == o.Attempts && o.Attempts > 1 && Retryable(last) {
		msg += fmt.Sprintf("; gave up after %d attempts", attempt)
	}
	// pgx's connect errors name hosts, users and databases, never the
	// password; mask it anyway, in case a DSN put it where a name goes.
	return nil, hidden{scrub(msg, []string{cfg.Password}), last}
}

// Retryable reports whether a connect error may go away by itself: network
// errors and a server that is starting or shutting down, but not
// authentication, a missing database or a bad configuration.
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P03", "57P01", "57P02", "53300": // cannot connect now, admin/crash shutdown, too many connections
			return true
		}
		return false
	}
	return true
}

// Lost reports whether err, returned mid-work (a query, a COPY, a commit),
// means that the connection or the server went away — a restart, a
// terminated backend, a network failure, or the source's snapshot vanishing
// with the session that exported it — so that the work may succeed on a new
// connection. Errors about the data or the request, and cancellation, are
// not lost connections.
func Lost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // admin/crash shutdown, cannot connect now
			pgErr.Code == "53300":                // too many connections
			return true
		case pgErr.Code == "22023" && strings.Contains(pgErr.Message, "snapshot"):
			// invalid snapshot identifier: the exporting session died.
			return true
		}
		return false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err):
		return true
	}
	// pgx reports use of a connection that a failure already closed so.
	return strings.Contains(err.Error(), "conn closed")
}

// Describe renders a PostgreSQL error without its Detail, which can hold row
// values, and other errors as they are.
func Describe(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		s := pgErr.Severity + ": " + hideValues(pgErr) + " (SQLSTATE " + pgErr.Code + ")"
		if pgErr.Hint != "" {
			s += "; hint: " + pgErr.Hint
		}
		return s
	}
	if err == nil {
		return ""
	}
	return oneLinePerAttempt(err.Error())
}

// oneLinePerAttempt drops the repeated lines of pgx's connect errors, which
// list every attempt under "failed to connect to …:", one "\n\t"-indented
// line each: with sslmode prefer (the default) a refused TLS attempt and
// the plain one that follows fail alike, so each dial error would print
// twice, and an unknown host is named twice too. A single remaining
// attempt goes on the same line.
func oneLinePerAttempt(msg string) string {
	head, rest, ok := strings.Cut(msg, "\n\t")
	if !ok {
		return msg
	}
	var lines []string
	all := strings.Split(rest, "\n\t")
	for _, l := range all {
		// A line that another ends with says nothing more: a failed lookup
		// is listed as "hostname resolving error: lookup …" and "lookup …".
		longer := slices.ContainsFunc(all, func(m string) bool { return m != l && strings.HasSuffix(m, l) })
		if !longer && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	if len(lines) == 1 {
		return head + " " + lines[0]
	}
	return head + "\n\t" + strings.Join(lines, "\n\t")
}

// SafeError adds a PostgreSQL error's hint to err's message, keeping the
// whole chain's context. PgError's own message never includes Detail (which
// can hold row values), but a data exception's (SQLSTATE class 22) quotes
// the value it could not take — invalid input syntax for type integer:
// "ann@example.com", from a subset's where or a cast of a row's value —
// which SafeError hides: the message then says (value hidden) there.
func SafeError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	msg := err.Error()
	if hidden := hideValues(pgErr); hidden != pgErr.Message {
		msg = strings.ReplaceAll(msg, pgErr.Error(), pgErr.Severity+": "+hidden+" (SQLSTATE "+pgErr.Code+")")
	}
	if pgErr.Hint != "" {
		msg += "; hint: " + pgErr.Hint
	}
	if msg == err.Error() {
		return err
	}
	return safeError{err, msg}
}

// hideValues returns a PostgreSQL error's message with the values a data
// exception quotes ("…", and the bytes of an invalid byte sequence)
// replaced by (value hidden); other messages as they are.
func hideValues(pgErr *pgconn.PgError) string {
	msg := pgErr.Message
	if !strings.HasPrefix(pgErr.Code, "22") {
		return msg
	}
	if i := strings.Index(msg, ": 0x"); i >= 0 {
		msg = msg[:i] + ": (value hidden)"
	}
	var b strings.Builder
	for {
		start := strings.IndexByte(msg, '"')
		if start < 0 {
			break
		}
		end := strings.LastIndexByte(msg, '"')
		if end == start {
			break
		}
		b.WriteString(msg[:start] + "(value hidden)")
		msg = msg[end+1:]
	}
	b.WriteString(msg)
	return b.String()
}

type safeError struct {
	err error
	msg string
}

func (e safeError) Error() string { return e.msg }
func (e safeError) Unwrap() error { return e.err }
