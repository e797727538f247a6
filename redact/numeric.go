package redact

import (
	"encoding/binary"
	"math/big"
	"strings"
)

// NumericKind tells finite numeric values from the special ones.
type NumericKind uint8

// Numeric kinds, after the sign word of the binary format.
const (
	NumericFinite NumericKind = iota
	NumericNaN
	NumericPosInf
	NumericNegInf
)

// Sign words of the numeric binary format.
const (
	numericPos    = 0x0000
	numericNeg    = 0x4000
	numericNaN    = 0xC000
	numericPosInf = 0xD000
	numericNegInf = 0xF000

	numericMaxDscale = 0x3FFF
	numericMaxDigits = 131072 + 16383 // digits before plus after the point
)

// Decimal is a numeric value: Coef × 10^-Scale, Scale ≥ 0 being
// PostgreSQL's display scale. Its methods reuse its memory, so one Decimal
// per compiled rule keeps allocations down.
type Decimal struct {
	Kind  NumericKind
	Coef  big.Int // signed
	Scale int

	buf []byte
	tmp big.Int
	// scratch of NoiseDecimal, kept to spare allocations per value
	unit, maxQ, delta, r, orig, pct, exp big.Int
}

// ReadNumeric decodes a numeric wire value into x.
func (x *Decimal) ReadNumeric(src []byte) error {
	if len(src) < 8 {
		return invalidf("numeric of %d bytes", len(src))
	}
	ndigits := int(int16(binary.BigEndian.Uint16(src)))
	weight := int(int16(binary.BigEndian.Uint16(src[2:])))
	sign := binary.BigEndian.Uint16(src[4:])
	dscale := int(binary.BigEndian.Uint16(src[6:]))
	if ndigits < 0 || len(src) != 8+2*ndigits {
		return invalidf("numeric of %d bytes with %d digits", len(src), ndigits)
	}
	x.Coef.SetInt64(0)
	x.Scale = 0
	switch sign {
	case numericPos, numericNeg:
		x.Kind = NumericFinite
	case numericNaN:
		x.Kind = NumericNaN
		return nil
	case numericPosInf:
		x.Kind = NumericPosInf
		return nil
	case numericNegInf:
		x.Kind = NumericNegInf
		return nil
	default:
		return invalidf("numeric sign %#04x", sign)
	}
	if dscale > numericMaxDscale {
		return invalidf("numeric scale %d", dscale)
	}
	// The digits as one decimal integer, value × 10^frac.
	x.buf = x.buf[:0]
	for i := 0; i < ndigits; i++ {
		g := binary.BigEndian.Uint16(src[8+2*i:])
		if g >= 10000 {
			return invalidf("numeric digit out of range")
		}
		x.buf = append(x.buf, byte('0'+g/1000), byte('0'+g/100%10), byte('0'+g/10%10), byte('0'+g%10))
	}
	frac := 4 * (ndigits - 1 - weight)
	if ndigits == 0 {
		frac = 0
	}
	switch {
	case frac > dscale:
		// Digits past the display scale are zero in what PostgreSQL sends;
		// drop them.
		x.buf = x.buf[:max(len(x.buf)-(frac-dscale), 0)]
	case frac < dscale:
		if len(x.buf)+dscale-frac > numericMaxDigits+4 {
			return invalidf("numeric weight %d", weight)
		}
		for range dscale - frac {
			x.buf = append(x.buf, '0')
		}
	}
	setDigits(&x.Coef, x.buf, &x.tmp)
	if sign == numericNeg {
		x.Coef.Neg(&x.Coef)
	}
	x.Scale = dscale
	return nil
}

// AppendNumeric appends x as a numeric wire value.
func (x *Decimal) AppendNumeric(dst []byte) []byte {
	var sign uint16
	switch x.Kind {
	case NumericNaN:
		return append(dst, 0, 0, 0, 0, numericNaN>>8, 0, 0, 0)
	case NumericPosInf:
		return append(dst, 0, 0, 0, 0, numericPosInf>>8, 0, 0, 0)
	case NumericNegInf:
		return append(dst, 0, 0, 0, 0, numericNegInf>>8, 0, 0, 0)
	}
	if x.Coef.Sign() < 0 {
		sign = numericNeg
	}
	// Decimal digits of |Coef|, padded so that groups of four align on the
	// decimal point.
	digits := x.tmp.Abs(&x.Coef).Append(x.buf[:0], 10)
	if x.Coef.Sign() == 0 {
		digits = digits[:0]
	}
	intLen := len(digits) - x.Scale
	fracZeros := 0 // zeros between the point and the first digit
	if intLen < 0 {
		fracZeros = -intLen
		intLen = 0
	}
	intPad := (4 - intLen%4) % 4
	lead := intPad + fracZeros
	trail := (4 - x.Scale%4) % 4
	total := lead + len(digits) + trail
	at := func(i int) int {
		if i < lead || i >= lead+len(digits) {
			return 0
		}
		return int(digits[i-lead] - '0')
	}
	weight := (intPad+intLen)/4 - 1
	first, last := 0, total/4 // group range [first, last)
	group := func(g int) uint16 {
		return uint16(at(4*g)*1000 + at(4*g+1)*100 + at(4*g+2)*10 + at(4*g+3))
	}
	for first < last && group(first) == 0 {
		first++
		weight--
	}
	for last > first && group(last-1) == 0 {
		last--
	}
	if first == last {
		weight, sign = 0, numericPos
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(last-first))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(x.Scale))
	for g := first; g < last; g++ {
		dst = binary.BigEndian.AppendUint16(dst, group(g))
	}
	x.buf = digits
	return dst
}

// ParseText sets x from a decimal literal ([+-]digits[.digits][e±n]) or
// NaN, Infinity and -Infinity, as numeric input accepts them.
func (x *Decimal) ParseText(s []byte) error {
	s = trimSpace(s)
	x.Coef.SetInt64(0)
	x.Scale = 0
	switch lower := strings.ToLower(string(s)); lower {
	case "nan":
		x.Kind = NumericNaN
		return nil
	case "infinity", "+infinity", "inf", "+inf":
		x.Kind = NumericPosInf
		return nil
	case "-infinity", "-inf":
		x.Kind = NumericNegInf
		return nil
	}
	x.Kind = NumericFinite
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	x.buf = x.buf[:0]
	nd, frac := 0, 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		x.buf = append(x.buf, s[i])
		nd++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			x.buf = append(x.buf, s[i])
			nd++
			frac++
		}
	}
	if nd == 0 {
		return errNotNumber
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return errNotNumber
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
			exp = exp*10 + int(s[i]-'0')
			if exp > numericMaxDigits {
				return errNumberRange
			}
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return errNotNumber
	}
	scale := frac - exp
	if scale < 0 {
		if len(x.buf)-scale > numericMaxDigits {
			return errNumberRange
		}
		for range -scale {
			x.buf = append(x.buf, '0')
		}
		scale = 0
	}
	if scale > numericMaxDscale {
		return errNumberRange
	}
	setDigits(&x.Coef, x.buf, &x.tmp)
	if neg {
		x.Coef.Neg(&x.Coef)
	}
	x.Scale = scale
	return nil
}

// AppendText appends x as a plain decimal literal (no exponent), with
// exactly Scale digits after the point; specials as NaN, Infinity,
// -Infinity.
func (x *Decimal) AppendText(dst []byte) []byte {
	switch x.Kind {
	case NumericNaN:
		return append(dst, "NaN"...)
	case NumericPosInf:
		return append(dst, "Infinity"...)
	case NumericNegInf:
		return append(dst, "-Infinity"...)
	}
	if x.Coef.Sign() < 0 {
		dst = append(dst, '-')
	}
	digits := x.tmp.Abs(&x.Coef).Append(x.buf[:0], 10)
	x.buf = digits
	if x.Scale == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= x.Scale {
		dst = append(dst, '0', '.')
		for i := len(digits); i < x.Scale; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-x.Scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-x.Scale:]...)
}

var bigTen = big.NewInt(10)

// setDigits sets z to the decimal digits, 18 at a time, sparing
// SetString's string copy.
func setDigits(z *big.Int, digits []byte, tmp *big.Int) {
	z.SetUint64(0)
	for len(digits) > 0 {
		n := min(18, len(digits))
		var v uint64
		for _, c := range digits[:n] {
			v = v*10 + uint64(c-'0')
		}
		z.Mul(z, tmp.SetUint64(pow10u64[n]))
		z.Add(z, tmp.SetUint64(v))
		digits = digits[n:]
	}
}

func pow10(z *big.Int, n int) *big.Int {
	if n <= 18 {
		return z.SetUint64(pow10u64[n])
	}
	return z.Exp(bigTen, big.NewInt(int64(n)), nil)
}

var pow10u64 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Round rounds x to scale digits after the point, half away from zero, as
// a numeric(p, scale) column does. A negative scale rounds to tens,
// hundreds…, leaving Scale 0.
func (x *Decimal) Round(scale int) {
	if x.Kind != NumericFinite {
		return
	}
	target := max(scale, 0)
	if x.Scale < target {
		x.Coef.Mul(&x.Coef, pow10(&x.tmp, target-x.Scale))
		x.Scale = target
	}
	if drop := x.Scale - scale; drop > 0 {
		// Round to a multiple of 10^drop, then keep the target scale.
		var unit, q, r big.Int
		pow10(&unit, drop)
		neg := x.Coef.Sign() < 0
		q.QuoRem(x.tmp.Abs(&x.Coef), &unit, &r)
		if r.Lsh(&r, 1).Cmp(&unit) >= 0 {
			q.Add(&q, big.NewInt(1))
		}
		if scale < 0 {
			q.Mul(&q, pow10(&unit, -scale))
		}
		if neg {
			q.Neg(&q)
		}
		x.Coef.Set(&q)
		x.Scale = target
	}
}

// CoefDigits returns the number of decimal digits of |Coef| (0 for zero).
func (x *Decimal) CoefDigits() int {
	if x.Kind != NumericFinite || x.Coef.Sign() == 0 {
		return 0
	}
	x.buf = x.tmp.Abs(&x.Coef).Append(x.buf[:0], 10)
	return len(x.buf)
}

// NoiseDecimal moves x by a nonzero amount of at most percent % of |x|,
// keeping its scale: the move is a multiple of 10^quantum units of the last
// place (quantum > 0 for numeric(p, s) columns with negative s) and at
// least one such multiple. When maxCoefDigits > 0 the result's coefficient
// keeps at most that many digits (the precision of a numeric(p, s)
// column), going the other way if needed. Special values are left
// unchanged. percent must be in (0, 100].
func NoiseDecimal(x *Decimal, percent float64, quantum, maxCoefDigits int, d *Digest) {
	if x.Kind != NumericFinite {
		return
	}
	unit, maxQ, delta, r, orig := &x.unit, &x.maxQ, &x.delta, &x.r, &x.orig
	pow10(unit, quantum)
	// maxQ = floor(|coef| × percent/100 / unit), at least 1.
	maxQ.Abs(&x.Coef)
	maxQ.Mul(maxQ, x.pct.SetInt64(int64(percent*1e6)))
	maxQ.Quo(maxQ, pow10(&x.exp, 8))
	maxQ.Quo(maxQ, unit)
	if maxQ.Sign() == 0 {
		maxQ.SetInt64(1)
	}
	r.SetBytes(d[:24])
	delta.Mod(r, maxQ)
	delta.Add(delta, x.exp.SetInt64(1))
	delta.Mul(delta, unit)
	if d[31]&1 == 1 {
		delta.Neg(delta)
	}
	orig.Set(&x.Coef)
	x.Coef.Add(orig, delta)
	if maxCoefDigits > 0 && x.CoefDigits() > maxCoefDigits {
		x.Coef.Sub(orig, delta)
	}
}

// AppendNoisyNumber appends a JSON number literal moved by NoiseDecimal
// (for plain decimals, keeping their scale) or NoiseFloat (for literals
// with an exponent). x is scratch.
func AppendNoisyNumber(dst, lit []byte, percent float64, d *Digest, x *Decimal) ([]byte, error) {
	for _, c := range lit {
		if c == 'e' || c == 'E' {
			v, err := parseFloat(lit)
			if err != nil {
				return dst, err
			}
			return appendFloatText(dst, NoiseFloat(v, 8, percent, d)), nil
		}
	}
	if err := x.ParseText(lit); err != nil {
		return dst, err
	}
	if x.Kind != NumericFinite {
		return dst, errNotNumber
	}
	NoiseDecimal(x, percent, 0, 0, d)
	return x.AppendText(dst), nil
}
