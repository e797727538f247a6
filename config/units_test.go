package config_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/config"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "90d", want: 90 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "0.1d", want: 144 * time.Minute},
		{in: "1h30m10s", want: time.Hour + 30*time.Minute + 10*time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "-5s", want: -5 * time.Second},
		{in: "+2d", want: 48 * time.Hour},
		{in: "", err: true},
		{in: "30", err: true},
		{in: "d", err: true},
		{in: "90days", err: true},
		{in: "1w", err: true},
		{in: "1.2.3d", err: true},
		{in: "-", err: true},
		{in: "100000d", want: 100000 * 24 * time.Hour},
		{in: "2000000000d", err: true},
		{in: "106751d106751d", err: true},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		switch {
		case tt.err && err == nil:
			t.Errorf("ParseDuration(%q) = %v, want an error", tt.in, got)
		case !tt.err && err != nil:
			t.Errorf("ParseDuration(%q): %v", tt.in, err)
		case !tt.err && got != tt.want:
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		case tt.err && !strings.Contains(err.Error(), "invalid duration"):
			t.Errorf("ParseDuration(%q) error %q does not say invalid duration", tt.in, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "134217728", want: 134217728},
		{in: "128MiB", want: 128 << 20},
		{in: "64MB", want: 64_000_000},
		{in: "64 mb", want: 64_000_000},
		{in: "1.5GiB", want: 3 << 29},
		{in: "10KiB", want: 10240},
		{in: "2TB", want: 2e12},
		{in: "512B", want: 512},
		{in: "0", want: 0},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "128 megs", err: true},
		{in: "-5MB", err: true},
		{in: "1.2.3MB", err: true},
		{in: "99999999999TiB", err: true},
		{in: "9223372036854775808", err: true},
	}
	for _, tt := range tests {
		got, err := config.ParseSize(tt.in)
		switch {
		case tt.err && err == nil:
			t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
		case !tt.err && err != nil:
			t.Errorf("ParseSize(%q): %v", tt.in, err)
		case !tt.err && got != tt.want:
			t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if got, err := config.ParseSize("8EiB"); err == nil {
		t.Errorf("ParseSize(8EiB) = %d (max %d), want an error", got, int64(math.MaxInt64))
	}
}

func TestSplitTableName(t *testing.T) {
	tests := []struct {
		in            string
		schema, table string
		pattern       bool
		err           string
	}{
		{in: "public.customer", schema: "public", table: "customer"},
		{in: "Public.Customer", schema: "public", table: "customer"},
		{in: `"Sales"."Order.Lines"`, schema: "Sales", table: "Order.Lines"},
		{in: `"a""b".c`, schema: `a"b`, table: "c"},
		{in: "public.*", schema: "public", table: "*", pattern: true},
		{in: "*.*", schema: "*", table: "*", pattern: true},
		{in: "public.cust?mer_[0-9]", schema: "public", table: "cust?mer_[0-9]", pattern: true},
		{in: `"we*rd".*`, schema: `we\*rd`, table: "*", pattern: true},
		{in: `"we*rd".t`, schema: "we*rd", table: "t"},
		{in: "customer", err: "must be schema-qualified"},
		{in: "db.public.customer", err: "more than one dot"},
		{in: "public.", err: "empty schema or table"},
		{in: ".customer", err: "empty schema or table"},
		{in: `"public.customer`, err: "unterminated double quote"},
		{in: "public. customer", err: "space"},
		{in: "public.[a-", err: "not a valid pattern"},
	}
	for _, tt := range tests {
		schema, table, pattern, err := config.SplitTableName(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SplitTableName(%q) error = %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || schema != tt.schema || table != tt.table || pattern != tt.pattern {
			t.Errorf("SplitTableName(%q) = %q, %q, %v, %v; want %q, %q, %v", tt.in, schema, table, pattern, err, tt.schema, tt.table, tt.pattern)
		}
	}
}
