package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a duration in Go syntax (time.ParseDuration) that
// may also use d for days of 24 hours: 90d, 1d12h, 1.5d, 36h, 30s. A
// leading - makes it negative; callers reject that where it makes no sense.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: expected a number and a unit, e.g. 30s, 15m, 36h, 90d or 1d12h", truncate(s, 40))
	}
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return bad()
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || '0' <= rest[i] && rest[i] <= '9') {
			i++
		}
		j := i
		for j < len(rest) && rest[j] != '.' && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return bad()
		}
		var d time.Duration
		var err error
		if unit == "d" {
			// A day is 24 hours: parse the number as hours, so that
			// fractions are exact, then scale.
			if d, err = time.ParseDuration(num + "h"); err == nil && d > math.MaxInt64/24 {
				err = errors.New("overflow")
			}
			d *= 24
		} else {
			d, err = time.ParseDuration(num + unit)
		}
		if err != nil {
			return bad()
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("invalid duration %q: too long", truncate(s, 40))
		}
		total += d
	}
	if neg {
		total = -total
	}
	return total, nil
}

// ParseSize parses a size in bytes: a plain number (134217728) or a number
// with a unit, decimal (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB), in
// any case, with or without a space: 128MiB, 64 MB, 1.5GiB.
func ParseSize(s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf("invalid size %q: expected bytes, or a number with a unit such as 64MB or 128MiB", truncate(s, 40))
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] == '.' || '0' <= t[i] && t[i] <= '9') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	default:
		return bad()
	}
	if num == "" {
		return bad()
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return bad()
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) >= math.MaxInt64 {
		return bad()
	}
	return int64(f * float64(mult)), nil
}
