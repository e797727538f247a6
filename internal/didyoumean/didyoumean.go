// Package didyoumean finds the name a user probably meant: a key, a rule, a
// column or a table spelt wrongly.
package didyoumean

import "strings"

// Closest returns the valid name closest to a misspelt one, if any is
// close: within two edits (one for names of three letters or fewer),
// ignoring case, or a valid name that the misspelt one begins (updated for
// updated_at). Empty when none is.
func Closest(name string, valid []string) string {
	best, bestDist := "", 3
	if len(name) <= 3 {
		bestDist = 2
	}
	lower := strings.ToLower(name)
	for _, v := range valid {
		if dist := editDistance(lower, v); dist < bestDist {
			best, bestDist = v, dist
		}
	}
	if best == "" && len(lower) >= 4 {
		// A key cut short: updated for updated_at.
		for _, v := range valid {
			if strings.HasPrefix(v, lower) {
				return v
			}
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (optimal string
// alignment) between short ASCII-ish strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
