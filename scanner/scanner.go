// Package scanner judges whether a column holds personal data, from its name
// and a sample of its values, and suggests the rule to redact it.
//
// This is the first, simple classifier that guards schema drift (a new
// column that looks like PII and has no rule); the PII scanner of
// `nopii scan` grows from it.
package scanner

import (
	"net/netip"
	"regexp"
	"strings"
)

// Finding is a column judged to hold personal data.
type Finding struct {
	Kind       string  // email, phone, name, ssn, address, ip, card, birth_date
	Confidence float64 // 0–1
	Evidence   string  // what matched: never the values themselves
	Rule       string  // the rule to add, as YAML flow: { rule: redact_email }
}

var nameRules = []struct {
	kind string
	re   *regexp.Regexp
	rule string
}{
	{"email", regexp.MustCompile(`(^|_)(e_?mail|mail|correo|courriel)(_|$)|email`), "{ rule: redact_email }"},
	{"phone", regexp.MustCompile(`(^|_)(phone|mobile|cell|tel|telefon|telephone|fax)(_|$)|phone`), "{ rule: fake, kind: phone }"},
	{"ssn", regexp.MustCompile(`(^|_)(ssn|social_security|national_id|tax_id|passport|nin)(_|$)`), "{ rule: hash }"},
	{"card", regexp.MustCompile(`(^|_)(card|credit_card|cc_number|pan|iban|account_number)(_|$)`), "{ rule: mask, keep_last: 4 }"},
	{"birth_date", regexp.MustCompile(`(^|_)(birth|birthday|dob|date_of_birth|birth_date|geburtsdatum)(_|$)`), "{ rule: shift_date }"},
	{"name", regexp.MustCompile(`(^|_)(first_?name|last_?name|full_?name|surname|given_name|family_name|middle_name|nombre|vorname|nachname)(_|$)`), "{ rule: fake, kind: full_name }"},
	{"address", regexp.MustCompile(`(^|_)(address|street|addr|postcode|postal_code|zip|zipcode|city)(_|$)`), "{ rule: fake, kind: street }"},
	{"ip", regexp.MustCompile(`(^|_)(ip|ip_address|ipaddr|remote_addr|client_ip)(_|$)`), "{ rule: fake, kind: ipv4 }"},
	{"password", regexp.MustCompile(`(^|_)(password|passwd|pwd|secret|token)(_|$)`), "{ rule: destroy }"},
}

// snake turns emailAddress or E-Mail into email_address / e_mail.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			b.WriteRune(r + 'a' - 'A')
		case r == '-' || r == ' ' || r == '.':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	emailRe = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$`)
	phoneRe = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{6,18}[0-9]$`)
	ssnRe   = regexp.MustCompile(`^[0-9]{3}-[0-9]{2}-[0-9]{4}$`)
	// isoDateRe keeps dates held as text from passing for phone numbers.
	isoDateRe = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}`)
)

// Classify judges a column from its name and sampled values (text).
func Classify(column string, values []string) (Finding, bool) {
	n := snake(column)
	for _, r := range nameRules {
		if r.re.MatchString(n) {
			return Finding{Kind: r.kind, Confidence: 0.7, Evidence: "column name", Rule: r.rule}, true
		}
	}
	if len(values) == 0 {
		return Finding{}, false
	}
	count := func(match func(string) bool) float64 {
		k := 0
		for _, v := range values {
			if match(strings.TrimSpace(v)) {
				k++
			}
		}
		return float64(k) / float64(len(values))
	}
	checks := []struct {
		kind, rule string
		match      func(string) bool
	}{
		{"email", "{ rule: redact_email }", emailRe.MatchString},
		{"ssn", "{ rule: hash }", ssnRe.MatchString},
		{"card", "{ rule: mask, keep_last: 4 }", luhnCard},
		{"ip", "{ rule: fake, kind: ipv4 }", func(s string) bool { _, err := netip.ParseAddr(s); return err == nil }},
		{"phone", "{ rule: fake, kind: phone }", func(s string) bool { return phoneRe.MatchString(s) && !isoDateRe.MatchString(s) }},
	}
	for _, c := range checks {
		if f := count(c.match); f >= 0.6 {
			return Finding{Kind: c.kind, Confidence: f, Evidence: "sampled values match", Rule: c.rule}, true
		}
	}
	return Finding{}, false
}

// luhnCard reports a 13–19 digit number (spaces and dashes allowed) with a
// valid Luhn check digit.
func luhnCard(s string) bool {
	sum, n, double := 0, 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c == ' ' || c == '-' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}
