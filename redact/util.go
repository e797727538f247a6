package redact

import (
	"errors"
	"strconv"
)

var (
	errNotNumber   = errors.New("not a number")
	errNumberRange = errors.New("number out of range")
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

func parseFloat(lit []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return 0, errNotNumber
	}
	return v, nil
}

func appendFloatText(dst []byte, v float64) []byte { return strconv.AppendFloat(dst, v, 'g', -1, 64) }
