package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs make demo's program and checks what the newcomer sees: the
// report, no log lines before it, and the sample in key order (1, 2, 3 …,
// not 1, 10, 100 as text sorts).
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, false, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("the demo printed log lines; want none at WARN and above on a healthy run:\n%s", stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "workflow demo: success") {
		t.Errorf("no report of the run:\n%s", out)
	}
	for _, part := range []string{"== before", "== after"} {
		_, sample, ok := strings.Cut(out, part)
		if !ok {
			t.Fatalf("no %q sample:\n%s", part, out)
		}
		ids := regexp.MustCompile(`(?m)^(\d+) `).FindAllStringSubmatch(sample, 5)
		var got []string
		for _, m := range ids {
			got = append(got, m[1])
		}
		if strings.Join(got, ",") != "1,2,3,4,5" {
			t.Errorf("%s: customer_id %v, want 1,2,3,4,5:\n%s", part, got, sample)
		}
	}
}
