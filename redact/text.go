package redact

import (
	"unicode/utf8"
)

// AppendEmail appends the redacted address u<hex>@domain, where hex is the
// first hexLen characters of d. Distinct digests give distinct addresses as
// long as their hex prefixes differ: 16 hex characters keep a hundred
// million addresses apart with near certainty.
func AppendEmail(dst []byte, d *Digest, hexLen int, domain string) []byte {
	dst = append(dst, 'u')
	dst = d.AppendHex(dst, hexLen)
	dst = append(dst, '@')
	return append(dst, domain...)
}

// AppendMask appends s with every rune except the first keepFirst and the
// last keepLast replaced by mask. A string that is not longer than
// keepFirst+keepLast runes is masked entirely, so that masking never shows
// a whole short value. The output has as many runes as s.
func AppendMask(dst, s []byte, keepFirst, keepLast int, mask rune) []byte {
	n := utf8.RuneCount(s)
	if n <= keepFirst+keepLast {
		keepFirst, keepLast = 0, 0
	}
	for i := 0; len(s) > 0; i++ {
		_, size := utf8.DecodeRune(s)
		if i < keepFirst || i >= n-keepLast {
			dst = append(dst, s[:size]...)
		} else if mask < utf8.RuneSelf {
			dst = append(dst, byte(mask))
		} else {
			dst = utf8.AppendRune(dst, mask)
		}
		s = s[size:]
	}
	return dst
}

// Alphanumeric is the alphabet of AppendAlnum.
const Alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// AppendAlnum appends n characters drawn uniformly from Alphanumeric.
func AppendAlnum(dst []byte, src *Source, n int) []byte {
	for range n {
		dst = append(dst, Alphanumeric[src.IntN(len(Alphanumeric))])
	}
	return dst
}

// Truncate returns the longest prefix of s that has at most maxChars runes
// and at most maxBytes bytes without splitting a rune; a limit of 0 means
// none.
func Truncate(s []byte, maxChars, maxBytes int) []byte {
	if maxBytes > 0 && len(s) > maxBytes {
		n := maxBytes
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if maxChars > 0 && len(s) > maxChars {
		i, runes := 0, 0
		for i < len(s) && runes < maxChars {
			_, size := utf8.DecodeRune(s[i:])
			i += size
			runes++
		}
		s = s[:i]
	}
	return s
}

// Alter changes the last rune of a non-empty s in place (it may shorten s)
// and returns it: the last resort of a rule whose re-derived outputs keep
// equalling a tiny input, such as a fake truncated to char(1).
func Alter(s []byte) []byte {
	if len(s) == 0 {
		return s
	}
	r, size := utf8.DecodeLastRune(s)
	c := byte('x')
	if r == 'x' {
		c = 'y'
	}
	return append(s[:len(s)-size], c)
}
