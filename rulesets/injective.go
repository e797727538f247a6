package rulesets

import (
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

// injectiveBits is the least output, in bits of HMAC, that counts as
// injective (a bigint's 63 do): with 60 bits, two of a hundred million
// values collide with a probability under 0.5%; with 32 bits, two of a
// hundred thousand do with 69%.
const injectiveBits = 60

// Injective reports whether a column's rule keeps the column's distinct
// values distinct, so that a UNIQUE constraint, primary key or unique
// index on it holds in the twin as in the source, and says why (or why
// not) in a phrase for reports: "redact_email is injective". keep is the
// identity; redact_email and hash are injective when the column leaves
// room for at least 60 bits of their HMAC (a varchar(20) of redact_email
// does not); the other rules are not in general. A spec that does not
// compile for the column is not injective.
func Injective(col nopii.Column, spec Spec) (bool, string) {
	info, ok := catalog[spec.Rule]
	if !ok {
		return false, fmt.Sprintf("%s is not a rule", spec.Rule)
	}
	if !info.injective {
		switch spec.Rule {
		case RuleReplace, RuleDestroy:
			return false, fmt.Sprintf("%s gives every row the same value", spec.Rule)
		}
		return false, fmt.Sprintf("%s is not injective: distinct values may redact alike", spec.Rule)
	}
	if spec.Rule == RuleKeep {
		return true, "keep copies the values as they are"
	}
	p, err := decode(spec.Rule, spec.Params)
	if err != nil {
		return false, err.Error()
	}
	c, err := describe(col)
	if err != nil {
		return false, err.Error()
	}
	bits := 0
	switch {
	case spec.Rule == RuleRedactEmail && c.class == cText:
		bits = 4 * fitTo(&c, defaultEmailHex, "u@"+p.domain)
	case spec.Rule == RuleHash && c.class == cText:
		n := 2 * len(redact.Digest{})
		if p.length > 0 {
			n = p.length
		}
		bits = 4 * fitTo(&c, n, "")
	case spec.Rule == RuleHash && c.class == cBytea:
		n := len(redact.Digest{})
		if p.length > 0 {
			n = p.length
		}
		bits = 8 * n
	case spec.Rule == RuleHash && c.class == cUUID:
		bits = 8*redact.UUIDLen - 6 // the version and variant bits are set
	case spec.Rule == RuleHash && (c.class == cInt2 || c.class == cInt4 || c.class == cInt8):
		bits = 8*c.class.intSize() - 1 // non-negative
	}
	if bits < injectiveBits {
		return false, fmt.Sprintf("%s keeps %d bits of its hash in %s: distinct values may redact alike", spec.Rule, max(bits, 0), c.what())
	}
	return true, fmt.Sprintf("%s is injective", spec.Rule)
}
