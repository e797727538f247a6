package pgconnect

import (
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// redactedPassword replaces passwords in Redact, as pgx does.
const redactedPassword = "xxxxx"

// secretKeys are the connection parameters whose values are secrets.
var secretKeys = map[string]bool{"password": true, "sslpassword": true}

// DSNError is a connection string that cannot be used. Its message is built
// from the redacted DSN and the kind of problem, never from pgx's error,
// which quotes the whole string and masks a password only where it can
// recognise one.
type DSNError struct {
	// DSN is the connection string with its secrets masked; empty when the
	// string could not be read at all, and so could not be masked with
	// certainty.
	DSN string
	// Kind says what is wrong, e.g. "failed to configure TLS (sslmode is
	// invalid)"; it holds none of the DSN's secrets.
	Kind string
}

func (e *DSNError) Error() string {
	if e.DSN == "" {
		return e.Kind + " (the connection string is not shown: it cannot be read well enough to hide its password)"
	}
	return "`" + e.DSN + "`: " + e.Kind
}

// ParseConfig parses a libpq connection string (a URL or key=value pairs)
// as pgx does. Its errors are *DSNError: they never hold the password.
// Every DSN nopii uses goes through it.
func ParseConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(dsn, err)
	}
	// libpq and pgx end a URL's user info at its first '@': with an
	// unencoded '@' in the password, the rest of the password becomes part
	// of the host name, and would be printed with every connect error.
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		if strings.Contains(h, "@") {
			return nil, &DSNError{DSN: Redact(dsn), Kind: `more than one "@" before the host: percent-encode "@" in a password as %40`}
		}
	}
	return cfg, nil
}

// parseError turns pgx's parse error into a DSNError.
func parseError(dsn string, err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return &DSNError{Kind: "cannot parse the connection string"}
	}
	// The message without the connection string: pgx's message is
	// "cannot parse `<string>`: <kind> (<cause>)".
	bare := *pe
	bare.ConnString = ""
	kind := strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	kind = scrub(kind, secrets(dsn))
	shown, ok := redactStrict(dsn)
	if !ok || strings.HasPrefix(kind, "failed to parse as") {
		// A syntax error: where the password ends is uncertain.
		shown = ""
	}
	return &DSNError{DSN: shown, Kind: kind}
}

// Hide returns err with every secret of dsn masked in its message; it
// unwraps to err, so that callers can still tell what kind of error it is.
// Use it on errors that pgx builds from a connection (pgxpool's).
func Hide(err error, dsn string) error {
	if err == nil {
		return nil
	}
	return hidden{scrub(err.Error(), secrets(dsn)), err}
}

type hidden struct {
	msg string
	err error
}

func (e hidden) Error() string { return e.msg }
func (e hidden) Unwrap() error { return e.err }

// scrub masks every occurrence of the secrets in s, longest first. Secrets
// shorter than 3 bytes are left: masking them would garble the message
// without hiding anything worth guessing.
func scrub(s string, secrets []string) string {
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, redactedPassword)
		}
	}
	return s
}

// secrets returns every string that may be a secret of dsn, however it is
// read: the password as pgx reads a URL (up to the first '@') and as Redact
// does (up to the last), percent-decoded or not, and the values of password
// parameters.
func secrets(dsn string) []string {
	var out []string
	add := func(raw string) {
		if raw == "" {
			return
		}
		out = append(out, raw)
		if dec, err := url.PathUnescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
		if dec, err := url.QueryUnescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
	}
	if rest, ok := urlRest(dsn); ok {
		for _, at := range []int{strings.IndexByte(rest, '@'), strings.LastIndexByte(rest, '@')} {
			if at < 0 {
				continue
			}
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				add(pw)
				for _, part := range strings.Split(pw, "@") {
					add(part)
				}
			}
		}
		if _, query, ok := strings.Cut(rest, "?"); ok {
			for _, p := range strings.Split(query, "&") {
				if k, v, ok := strings.Cut(p, "="); ok && secretKeys[strings.ToLower(k)] {
					add(v)
				}
			}
		}
		return out
	}
	pairs, rest := keyValues(dsn)
	for _, p := range pairs {
		if secretKeys[strings.ToLower(p.key)] {
			add(p.raw)
			add(p.value)
		}
	}
	if rest != "" {
		// Past the point where the string could be read: any of it may be
		// a password, for example after an unterminated quote.
		add(strings.TrimSpace(rest))
		for _, f := range strings.Fields(rest) {
			add(strings.Trim(f, "'"))
		}
	}
	return out
}

// Redact returns dsn with its passwords replaced by xxxxx, for logs and
// messages. It handles both forms libpq accepts: URLs
// (postgres://user:pw@host/db, and password=… query parameters) and
// key=value strings (host=h password = 'p w' dbname=d). It errs on the side
// of hiding: a string it cannot read is masked from the first password on.
func Redact(dsn string) string {
	if rest, ok := urlRest(dsn); ok {
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://" + redactURL(rest)
	}
	return redactKeyValue(dsn)
}

// redactStrict is Redact for a string it can read entirely; ok is false
// when it cannot.
func redactStrict(dsn string) (string, bool) {
	if _, ok := urlRest(dsn); ok {
		return Redact(dsn), true
	}
	_, rest := keyValues(dsn)
	return redactKeyValue(dsn), rest == ""
}

// urlRest returns the part of a URL DSN after "://".
func urlRest(dsn string) (string, bool) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	return rest, ok && !strings.ContainsAny(scheme, " ='")
}

// redactURL masks the password in the part of a URL after "://". It does
// not rely on the URL being well formed: a password that was not
// percent-encoded may hold @, /, ? or :, and drivers disagree on where it
// ends, so the user info is taken to end at the last @.
func redactURL(rest string) string {
	if base, query, ok := strings.Cut(rest, "?"); ok {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && secretKeys[strings.ToLower(k)] {
				params[i] = k + "=" + redactedPassword
			}
		}
		rest = base + "?" + strings.Join(params, "&")
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return rest
	}
	user, _, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return rest
	}
	return user + ":" + redactedPassword + rest[at:]
}

// pair is one key=value of a key=value DSN, as written (raw) and as meant
// (value: quotes and backslash escapes removed).
type pair struct {
	key, raw, value string
	start, end      int // the value's span in the DSN
}

// keyValues reads a key=value DSN as libpq does: values are bare words or
// single-quoted strings, both with backslash escapes, and '=' may have
// spaces around it. rest is what could not be read ("" when all could).
func keyValues(dsn string) (pairs []pair, rest string) {
	i := 0
	skip := func() {
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
	}
	for {
		skip()
		if i == len(dsn) {
			return pairs, ""
		}
		start := i
		for i < len(dsn) && !isSpace(dsn[i]) && dsn[i] != '=' {
			i++
		}
		key := dsn[start:i]
		skip()
		if key == "" || i == len(dsn) || dsn[i] != '=' {
			return pairs, dsn[start:]
		}
		i++
		skip()
		p := pair{key: key, start: i}
		var val strings.Builder
		// until reads the value up to a byte that stop accepts, undoing
		// backslash escapes.
		until := func(stop func(c byte) bool) {
			for i < len(dsn) && !stop(dsn[i]) {
				if dsn[i] == '\\' {
					i++
					if i == len(dsn) {
						break
					}
				}
				val.WriteByte(dsn[i])
				i++
			}
		}
		if i < len(dsn) && dsn[i] == '\'' {
			i++
			until(func(c byte) bool { return c == '\'' })
			if i == len(dsn) {
				return pairs, dsn[start:]
			}
			i++ // the closing quote
		} else {
			until(isSpace)
		}
		p.end, p.raw, p.value = i, dsn[p.start:i], val.String()
		pairs = append(pairs, p)
	}
}

// redactKeyValue masks the values of password keys in a key=value DSN.
// From where the string cannot be read on, the rest is masked if it may
// hold a password.
func redactKeyValue(dsn string) string {
	pairs, rest := keyValues(dsn)
	var b strings.Builder
	last := 0
	for _, p := range pairs {
		if secretKeys[strings.ToLower(p.key)] {
			b.WriteString(dsn[last:p.start])
			b.WriteString(redactedPassword)
			last = p.end
		}
	}
	tail := dsn[last : len(dsn)-len(rest)]
	b.WriteString(tail)
	if rest == "" {
		return b.String()
	}
	if !strings.Contains(strings.ToLower(rest), "password") {
		b.WriteString(rest)
		return b.String()
	}
	// Keep what precedes the unreadable value (its key and '='), mask
	// the value and everything after it.
	if k, _, ok := strings.Cut(rest, "="); ok && !strings.ContainsAny(strings.TrimSpace(k), " \t\n\r\f\v'") {
		b.WriteString(k + "=")
	}
	b.WriteString(redactedPassword)
	return b.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
