package agent

import (
	"runtime"
	"testing"

	"github.com/nopii/nopii/config"
)

func TestRangeStreams(t *testing.T) {
	for _, c := range []struct {
		parallelism, want int
	}{
		{0, runtime.NumCPU() / 2}, // the default: half the cores (one stream on 2)
		{1, 1},
		{4, 4},
	} {
		if got := rangeStreams(&config.Workflow{Parallelism: c.parallelism}); got != c.want {
			t.Errorf("parallelism %d: a table is read by up to %d streams, want %d", c.parallelism, got, c.want)
		}
	}
}

// The stream tokens bound a run's streams: tables hold one each, page
// ranges take only what is free, and give it back.
func TestStreams(t *testing.T) {
	s := newStreams(4)
	s.acquire()
	s.acquire()
	if got := s.tryAcquire(5); got != 2 {
		t.Fatalf("tryAcquire(5) with 2 of 4 held took %d, want 2", got)
	}
	if got := s.tryAcquire(1); got != 0 {
		t.Fatalf("tryAcquire with all held took %d", got)
	}
	s.release(3)
	if got := s.tryAcquire(3); got != 3 {
		t.Fatalf("after release(3), tryAcquire(3) took %d", got)
	}
}
