package redact

import (
	"math"
	"math/bits"
)

// NoiseInt returns v moved by a nonzero amount of at most percent % of |v|
// (at least 1, one unit of the last place), staying within [lo, hi]: if the
// move d selects would leave the range, it goes the other way. percent
// must be in (0, 100].
func NoiseInt(v, lo, hi int64, percent float64, d *Digest) int64 {
	mag := uint64(v)
	if v < 0 {
		mag = -mag
	}
	maxDelta := uint64(1)
	if m := float64(mag) * percent / 100; m >= 2 {
		maxDelta = uint64(min(m, float64(mag)))
	}
	delta, _ := bits.Mul64(d.Uint64(), maxDelta)
	delta++ // [1, maxDelta]
	up := d[8]&1 == 0
	canUp := delta <= uint64(hi)-uint64(v)
	canDown := delta <= uint64(v)-uint64(lo)
	switch {
	case up && canUp, !canDown && canUp:
		return int64(uint64(v) + delta)
	case canDown:
		return int64(uint64(v) - delta)
	case v < hi:
		return hi
	default:
		return lo
	}
}

// NoiseFloat returns v (a float4 when size is 4, else a float8) moved by a
// nonzero relative amount of at most percent %, staying finite: if the
// move would overflow it goes the other way, and a move too small to
// change the value becomes one unit of the last place. NaN and ±Inf are
// returned unchanged. percent must be in (0, 100].
func NoiseFloat(v float64, size int, percent float64, d *Digest) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r := float64(d.Uint64()>>11+1) / (1 << 53) // (0, 1]
	delta := math.Abs(v) * (percent / 100 * r) // scale first: |v|×percent may overflow
	if d[8]&1 == 1 {
		delta = -delta
	}
	if size == 4 {
		v32 := float32(v)
		out := float32(v + delta)
		if math.IsInf(float64(out), 0) {
			out = float32(v - delta)
		}
		if out == v32 {
			dir := float32(math.Inf(1))
			if delta < 0 {
				dir = -dir
			}
			out = math.Nextafter32(v32, dir)
			if math.IsInf(float64(out), 0) {
				out = math.Nextafter32(v32, -dir)
			}
		}
		return float64(out)
	}
	out := v + delta
	if math.IsInf(out, 0) {
		out = v - delta
	}
	if out == v {
		dir := math.Inf(1)
		if delta < 0 {
			dir = -dir
		}
		out = math.Nextafter(v, dir)
		if math.IsInf(out, 0) {
			out = math.Nextafter(v, -dir)
		}
	}
	return out
}
