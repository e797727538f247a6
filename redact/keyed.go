package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math/bits"
	"math/rand/v2"
)

// Digest is an HMAC-SHA256 output: the keyed fingerprint of one value from
// which every deterministic rule derives its output.
type Digest [sha256.Size]byte

// Uint64 returns the first eight bytes of the digest as a big-endian number,
// the seed of choices that need a single draw.
func (d *Digest) Uint64() uint64 { return binary.BigEndian.Uint64(d[:8]) }

const hexDigits = "0123456789abcdef"

// AppendHex appends the first n lowercase hex characters of the digest
// (n at most 64) to dst.
func (d *Digest) AppendHex(dst []byte, n int) []byte {
	n = min(max(n, 0), 2*len(d))
	dst = hex.AppendEncode(dst, d[:n/2]) // a byte at a time: on every row of a hash rule
	if n%2 == 1 {
		dst = append(dst, hexDigits[d[n/2]>>4])
	}
	return dst
}

// Keyed computes HMAC-SHA256 digests under one key. It reuses one hash state
// and one scratch buffer, so Sum does not allocate; a Keyed is therefore not
// safe for concurrent use. Compile one per stream.
type Keyed struct {
	mac     hash.Hash
	scratch []byte
}

// NewKeyed returns a Keyed for key. The key is the workflow's hmac_key; it
// never appears in errors.
func NewKeyed(key []byte) *Keyed {
	return &Keyed{mac: hmac.New(sha256.New, key), scratch: make([]byte, 0, 64)}
}

// Sum sets d to HMAC-SHA256(key, value).
func (k *Keyed) Sum(d *Digest, value []byte) {
	k.mac.Reset()
	k.mac.Write(value)
	k.mac.Sum(d[:0])
}

// SumN sets d to the n-th re-derivation of value's digest (n ≥ 1): rules use
// it when their first output happened to equal the input. SumN(d, v, 0) is
// Sum(d, v).
func (k *Keyed) SumN(d *Digest, value []byte, n uint32) {
	if n == 0 {
		k.Sum(d, value)
		return
	}
	// A 0xff byte never occurs in UTF-8 text, so a re-derivation of one
	// text value cannot coincide with the first derivation of another.
	k.scratch = append(k.scratch[:0], 0xff, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	k.mac.Reset()
	k.mac.Write(value)
	k.mac.Write(k.scratch)
	k.mac.Sum(d[:0])
}

// Source is a small reseedable random source (PCG) for generators that draw
// more than one number per value, gofakeit among them. Seed it from a
// digest before each value; it does not allocate.
type Source struct {
	pcg rand.PCG
}

var _ rand.Source = (*Source)(nil)

// Seed resets the source to a state derived from d.
func (s *Source) Seed(d *Digest) {
	s.pcg.Seed(binary.BigEndian.Uint64(d[0:8]), binary.BigEndian.Uint64(d[8:16]))
}

// Uint64 returns the next pseudo-random number.
func (s *Source) Uint64() uint64 { return s.pcg.Uint64() }

// Uint64N returns a uniform number in [0, n); n must be positive.
func (s *Source) Uint64N(n uint64) uint64 {
	// Lemire's multiply-and-reject, as math/rand/v2 does.
	hi, lo := bits.Mul64(s.pcg.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(s.pcg.Uint64(), n)
		}
	}
	return hi
}

// IntN returns a uniform number in [0, n); n must be positive.
func (s *Source) IntN(n int) int { return int(s.Uint64N(uint64(n))) }

// Float64 returns a uniform number in [0, 1).
func (s *Source) Float64() float64 { return float64(s.pcg.Uint64()<<11>>11) / (1 << 53) }
