package rulesets

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

const (
	// redact_email keeps 16 hex characters (64 bits) of the digest where
	// the column allows: collisions stay improbable up to billions of
	// addresses, and columns of different lengths still agree (joins).
	defaultEmailHex = 16
	// minEmailHex and minHashHex are the fewest hex characters the rules
	// output: below 32 bits collisions become common.
	minEmailHex = 8
	minHashHex  = 8
	// maxRerolls bounds the re-derivations of an output that equals its
	// input before the rule alters it instead.
	maxRerolls = 16
)

// Compile compiles a column's rule into a redact.Func over the column's
// binary values. It returns (nil, nil) for keep: the caller passes the raw
// value through. It checks the params (as Check does), the key (keyed
// rules need a non-empty one) and that the rule fits the column's type and
// limits, so that misfits fail here rather than on row 1,000,000. Errors are
// *RuleError.
//
// Domains compile as their base type (NOT NULL from the column or any
// domain); array columns apply the rule to each element and keep NULL
// elements NULL, except destroy and a list-valued replace, which act on
// the whole array. The Func is not safe for concurrent use: compile one
// per stream.
func Compile(table nopii.TableName, col nopii.Column, spec Spec, key []byte) (redact.Func, error) {
	fail := func(err error) (redact.Func, error) {
		return nil, &RuleError{Table: table.String(), Column: col.Name, Rule: spec.Rule, Err: err}
	}
	p, err := decode(spec.Rule, spec.Params)
	if err != nil {
		return fail(err)
	}
	if spec.Rule == RuleKeep {
		return nil, nil
	}
	if len(key) == 0 && spec.NeedsKey() {
		return fail(ErrNoKey)
	}
	c, err := describe(col)
	if err != nil {
		return fail(err)
	}
	f, err := compile(&c, spec.Rule, p, key)
	if err != nil {
		return fail(err)
	}
	return f, nil
}

func compile(c *target, rule string, p params, key []byte) (redact.Func, error) {
	switch rule {
	case RuleDestroy:
		return compileDestroy(c)
	case RuleReplace:
		return compileReplace(c, p)
	}
	f, err := compileValue(c, rule, p, key)
	if err != nil {
		return nil, err
	}
	if c.array {
		return redact.ArrayOf(redact.NonNull(f)), nil
	}
	return redact.NonNull(f), nil
}

// valueFunc redacts one non-NULL scalar value.
type valueFunc = func(dst, src []byte) ([]byte, error)

func compileValue(c *target, rule string, p params, key []byte) (valueFunc, error) {
	switch rule {
	case RuleRedactEmail:
		return compileEmail(c, p, key)
	case RuleFake:
		return compileFake(c, p, key)
	case RuleHash:
		return compileHash(c, p, key)
	case RuleMask:
		return compileMask(c, p)
	case RuleRandomString:
		return compileRandomString(c, p, key)
	case RuleShiftDate:
		return compileShiftDate(c, p, key)
	case RuleNoise:
		return compileNoise(c, p, key)
	case RuleJSON:
		return compileJSON(c, p, key)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownRule, rule)
}

// mismatchError is a rule that cannot produce the column's values; it
// matches ErrTypeMismatch.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrTypeMismatch) hold without putting the
// sentinel's text into the message.
func (e *mismatchError) Is(target error) bool { return target == ErrTypeMismatch }

func mismatchf(format string, args ...any) error {
	return &mismatchError{fmt.Sprintf(format, args...)}
}

// needs reports a column type the rule does not handle.
func needs(c *target, want string) error {
	hint := ""
	if c.class == cEnum {
		hint = " (an enum: use replace with one of its labels, or destroy)"
	}
	return mismatchf("needs %s column, got %s%s", want, c.what(), hint)
}

// fitTo returns n cut to the characters an output may have in the column
// when it must also hold fixed (text of known runes and bytes). The result
// may be negative: fixed alone does not fit.
func fitTo(c *target, n int, fixed string) int {
	if c.maxChars > 0 {
		n = min(n, c.maxChars-utf8.RuneCountInString(fixed))
	}
	if c.maxBytes > 0 {
		n = min(n, c.maxBytes-len(fixed))
	}
	return n
}

// seeded derives digests from the canonical form of values: the keyed
// state of one compiled rule.
type seeded struct {
	k       *redact.Keyed
	canon   redact.Canon
	d       redact.Digest
	scratch []byte
	// aliases: the canonical form is (part of) the value itself, so
	// scratch is unused.
	aliases bool
}

func newSeeded(c *target, key []byte) *seeded {
	return &seeded{
		k:       redact.NewKeyed(key),
		canon:   c.canon(),
		scratch: make([]byte, 0, 64),
		aliases: c.class == cText || c.class == cEnum,
	}
}

// seed sets s.d to the digest of src's canonical form and returns that
// form.
func (s *seeded) seed(src []byte) ([]byte, error) {
	in, err := s.canon(s.scratch[:0], src)
	if err != nil {
		return nil, err
	}
	if !s.aliases {
		s.scratch = in[:0] // keep the buffer if it grew
	}
	s.k.Sum(&s.d, in)
	return in, nil
}

// gen appends an output derived from a digest.
type gen = func(dst []byte, d *redact.Digest) []byte

// derive appends gen's output for src, re-deriving the digest while the
// output equals the input (its canonical text for text outputs, its bytes
// for binary ones) and altering it as a last resort, so that a redacting
// rule never outputs its input.
func (s *seeded) derive(dst, src []byte, binary bool, g gen) ([]byte, error) {
	in, err := s.seed(src)
	if err != nil {
		return dst, err
	}
	cmp := in
	if binary {
		cmp = src
	}
	start := len(dst)
	for n := uint32(1); ; n++ {
		dst = g(dst, &s.d)
		if !bytes.Equal(dst[start:], cmp) {
			return dst, nil
		}
		if n > maxRerolls {
			if binary {
				dst[len(dst)-1] ^= 1
				return dst, nil
			}
			out := redact.Alter(dst[start:])
			return dst[:start+len(out)], nil
		}
		dst = dst[:start]
		s.k.SumN(&s.d, in, n)
	}
}

func compileEmail(c *target, p params, key []byte) (valueFunc, error) {
	if c.class != cText {
		return nil, needs(c, "a text")
	}
	domain := p.domain
	hexLen := fitTo(c, defaultEmailHex, "u@"+domain)
	if hexLen < minEmailHex {
		return nil, mismatchf("%s cannot hold u + %d hex characters + @%s (%d characters)",
			c.what(), minEmailHex, domain, minEmailHex+2+utf8.RuneCountInString(domain))
	}
	s := newSeeded(c, key)
	g := func(dst []byte, d *redact.Digest) []byte { return redact.AppendEmail(dst, d, hexLen, domain) }
	return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, false, g) }, nil
}

func compileHash(c *target, p params, key []byte) (valueFunc, error) {
	s := newSeeded(c, key)
	if p.length != 0 && c.class != cText && c.class != cBytea {
		return nil, mismatchf("param length applies to text and bytea columns, not %s", c.what())
	}
	switch c.class {
	case cText:
		n := 2 * len(redact.Digest{})
		if p.length > n {
			return nil, mismatchf("length %d exceeds the %d hex characters of HMAC-SHA256", p.length, n)
		}
		if p.length > 0 {
			n = p.length
		}
		n = fitTo(c, n, "")
		if n < minHashHex {
			return nil, mismatchf("%s cannot hold %d hex characters", c.what(), minHashHex)
		}
		g := func(dst []byte, d *redact.Digest) []byte { return d.AppendHex(dst, n) }
		return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, false, g) }, nil
	case cBytea:
		n := len(redact.Digest{})
		if p.length > n {
			return nil, mismatchf("length %d exceeds the %d bytes of HMAC-SHA256", p.length, n)
		}
		if p.length > 0 {
			n = p.length
		}
		g := func(dst []byte, d *redact.Digest) []byte { return append(dst, d[:n]...) }
		return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, true, g) }, nil
	case cUUID:
		g := func(dst []byte, d *redact.Digest) []byte {
			n := len(dst)
			dst = append(dst, d[:redact.UUIDLen]...)
			// RFC 9562 version 8 (custom): derived from a hash, not random.
			dst[n+6] = dst[n+6]&0x0f | 0x80
			dst[n+8] = dst[n+8]&0x3f | 0x80
			return dst
		}
		return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, true, g) }, nil
	case cInt2, cInt4, cInt8:
		size := c.class.intSize()
		_, hi := redact.IntRange(size)
		mask := uint64(hi)
		g := func(dst []byte, d *redact.Digest) []byte {
			return redact.AppendInt(dst, int64(d.Uint64()&mask), size)
		}
		return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, true, g) }, nil
	}
	return nil, needs(c, "a text, bytea, uuid or integer")
}

// fakeTypes names the fake kinds a non-text column can take.
func fakeKindsFor(c *target) string {
	switch c.class {
	case cText:
		return strings.Join(redact.FakeKinds(), ", ")
	case cDate, cTimestamp, cTimestamptz:
		return "date_of_birth"
	case cUUID:
		return "uuid"
	case cInet, cCidr:
		return "ipv4, ipv6"
	}
	return ""
}

func compileFake(c *target, p params, key []byte) (valueFunc, error) {
	f, err := redact.NewFaker(p.kind)
	if err != nil {
		return nil, err
	}
	s := newSeeded(c, key)
	var g gen
	binary := true
	switch k := p.kind; {
	case c.class == cText:
		binary = false
		maxChars, maxBytes := c.maxChars, c.maxBytes
		g = func(dst []byte, d *redact.Digest) []byte {
			n := len(dst)
			dst = f.AppendText(dst, d)
			return dst[:n+len(redact.Truncate(dst[n:], maxChars, maxBytes))]
		}
	case k == "date_of_birth" && c.class == cDate:
		g = func(dst []byte, d *redact.Digest) []byte { return redact.AppendInt(dst, f.BirthDate(d), 4) }
	case k == "date_of_birth" && (c.class == cTimestamp || c.class == cTimestamptz):
		g = func(dst []byte, d *redact.Digest) []byte {
			return redact.AppendInt(dst, f.BirthDate(d)*redact.MicrosPerDay, 8)
		}
	case k == "uuid" && c.class == cUUID:
		g = f.AppendUUID
	case (k == "ipv4" || k == "ipv6") && (c.class == cInet || c.class == cCidr):
		family, size := byte(redact.InetFamilyV4), 4
		if k == "ipv6" {
			family, size = redact.InetFamilyV6, 16
		}
		isCIDR := byte(0)
		if c.class == cCidr {
			isCIDR = 1
		}
		g = func(dst []byte, d *redact.Digest) []byte {
			dst = append(dst, family, byte(8*size), isCIDR, byte(size))
			return f.AppendIP(dst, d, size)
		}
	default:
		if kinds := fakeKindsFor(c); kinds != "" {
			return nil, mismatchf("fake kind %s does not fit a %s column (kinds that do: %s)", k, c.what(), kinds)
		}
		return nil, needs(c, "a text, date, timestamp, uuid or inet")
	}
	return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, binary, g) }, nil
}

func compileMask(c *target, p params) (valueFunc, error) {
	if c.class != cText {
		return nil, needs(c, "a text")
	}
	if c.maxBytes > 0 && p.char >= utf8.RuneSelf {
		// Masking a 63-byte name with a multi-byte character would not fit.
		return nil, mismatchf("param char must be ASCII for a %s column", c.what())
	}
	keepFirst, keepLast, char, bpchar := p.keepFirst, p.keepLast, p.char, c.bpchar
	return func(dst, src []byte) ([]byte, error) {
		if bpchar {
			src = redact.TrimPad(src)
		}
		return redact.AppendMask(dst, src, keepFirst, keepLast, char), nil
	}, nil
}

func compileRandomString(c *target, p params, key []byte) (valueFunc, error) {
	if c.class != cText {
		return nil, needs(c, "a text")
	}
	n := p.length
	if n == 0 {
		n = 16
		if c.maxChars > 0 {
			n = c.maxChars
		}
	}
	n = fitTo(c, n, "")
	if n < 1 {
		return nil, mismatchf("%s cannot hold a character", c.what())
	}
	s := newSeeded(c, key)
	var rng redact.Source
	g := func(dst []byte, d *redact.Digest) []byte {
		rng.Seed(d)
		return redact.AppendAlnum(dst, &rng, n)
	}
	return func(dst, src []byte) ([]byte, error) { return s.derive(dst, src, false, g) }, nil
}

func compileShiftDate(c *target, p params, key []byte) (valueFunc, error) {
	s := newSeeded(c, key)
	maxDays := p.maxDays
	switch c.class {
	case cDate:
		return func(dst, src []byte) ([]byte, error) {
			if _, err := s.seed(src); err != nil {
				return dst, err
			}
			v, _ := redact.ReadInt(src, 4)
			return redact.AppendInt(dst, redact.ShiftDate(v, redact.ShiftOffset(&s.d, maxDays)), 4), nil
		}, nil
	case cTimestamp, cTimestamptz:
		return func(dst, src []byte) ([]byte, error) {
			if _, err := s.seed(src); err != nil {
				return dst, err
			}
			v, _ := redact.ReadInt(src, 8)
			return redact.AppendInt(dst, redact.ShiftTimestamp(v, redact.ShiftOffset(&s.d, maxDays)), 8), nil
		}, nil
	}
	return nil, needs(c, "a date, timestamp or timestamptz")
}

func compileNoise(c *target, p params, key []byte) (valueFunc, error) {
	s := newSeeded(c, key)
	pct := p.percent
	switch c.class {
	case cInt2, cInt4, cInt8:
		size := c.class.intSize()
		lo, hi := redact.IntRange(size)
		return func(dst, src []byte) ([]byte, error) {
			if _, err := s.seed(src); err != nil {
				return dst, err
			}
			v, _ := redact.ReadInt(src, size)
			return redact.AppendInt(dst, redact.NoiseInt(v, lo, hi, pct, &s.d), size), nil
		}, nil
	case cFloat4, cFloat8:
		size := 4
		if c.class == cFloat8 {
			size = 8
		}
		return func(dst, src []byte) ([]byte, error) {
			v, err := redact.ReadFloat(src, size)
			if err != nil {
				return dst, err
			}
			if _, err := s.seed(src); err != nil {
				return dst, err
			}
			return redact.AppendFloat(dst, redact.NoiseFloat(v, size, pct, &s.d), size), nil
		}, nil
	case cNumeric:
		var x redact.Decimal
		prec, scale := c.numPrec, c.numScale
		quantum := 0
		if prec > 0 && scale < 0 {
			quantum = -scale
		}
		return func(dst, src []byte) ([]byte, error) {
			if err := x.ReadNumeric(src); err != nil {
				return dst, err
			}
			if _, err := s.seed(src); err != nil {
				return dst, err
			}
			maxDigits := 0
			if prec > 0 {
				maxDigits = prec - scale + x.Scale
			}
			redact.NoiseDecimal(&x, pct, quantum, maxDigits, &s.d)
			return x.AppendNumeric(dst), nil
		}, nil
	}
	return nil, needs(c, "an integer, numeric, real or double precision")
}
