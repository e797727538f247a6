package config

import (
	"strings"
)

// redactedPassword replaces passwords in RedactDSN, as pgx does.
const redactedPassword = "xxxxx"

// RedactDSN returns dsn with its password replaced by xxxxx, for logs and
// messages. It handles both forms libpq accepts: URLs
// (postgres://user:pw@host/db, and a password=… query parameter) and
// key=value strings (host=h password='p w' dbname=d). It errs on the side
// of hiding: a string it cannot read is masked from the first password on.
func RedactDSN(dsn string) string {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok && !strings.ContainsAny(scheme, " ='") {
		return scheme + "://" + redactURL(rest)
	}
	return redactKeyValue(dsn)
}

// redactURL masks the password in the part of a URL after "://". It does
// not rely on the URL being well formed: a password that was not
// percent-encoded may hold @, /, ? or :, and drivers disagree on where it
// ends, so the user info is taken to end at the last @.
func redactURL(rest string) string {
	if base, query, ok := strings.Cut(rest, "?"); ok {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "password") {
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

// redactKeyValue masks the value of password= in a key=value DSN, whose
// values are bare words or single-quoted strings with backslash escapes.
func redactKeyValue(dsn string) string {
	var b strings.Builder
	s := dsn
	for {
		// Copy spaces, then the key and '=' (which may have spaces around it).
		i := 0
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		b.WriteString(s[:i])
		s = s[i:]
		if s == "" {
			return b.String()
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			b.WriteString(s)
			return b.String()
		}
		// The key is the last word before '=': a stray word before it
		// must not hide a password from the check below.
		key := ""
		if f := strings.Fields(s[:eq]); len(f) > 0 {
			key = strings.ToLower(f[len(f)-1])
		}
		j := eq + 1
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		b.WriteString(s[:j])
		s = s[j:]

		// The value.
		end := 0
		if strings.HasPrefix(s, "'") {
			end = 1
			for end < len(s) && s[end] != '\'' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				// Unterminated quote: hide the rest if it is or may hold
				// the password.
				if key == "password" || strings.Contains(strings.ToLower(s), "password") {
					b.WriteString(redactedPassword)
				} else {
					b.WriteString(s)
				}
				return b.String()
			}
			end++ // the closing quote
		} else {
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
		}
		if key == "password" {
			b.WriteString(redactedPassword)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
