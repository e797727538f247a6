package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU times from /proc (Linux only), for the benchmarks' CPU columns: on a
// shared machine wall times swing, CPU seconds much less.

// procStat returns a process's parent and its fields from state (field 3
// of proc(5)) on: f[i-3] is field i.
func procStat(pid int) (ppid int, f []string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, nil, false
	}
	s := string(b)
	f = strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the command name may hold anything
	if len(f) < 15 {
		return 0, nil, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f, true
}

// ticks sums fields of proc(5)'s stat: utime 14, stime 15, cutime 16, cstime 17.
func ticks(f []string, fields ...int) time.Duration {
	var n int64
	for _, i := range fields {
		v, _ := strconv.ParseInt(f[i-3], 10, 64)
		n += v
	}
	return time.Duration(n) * time.Second / 100 // USER_HZ
}

// procCPU returns the CPU time (user and system) a process has used, with
// that of its children that have exited when children is set; 0 if it
// cannot tell.
func procCPU(pid int, children bool) time.Duration {
	_, f, ok := procStat(pid)
	if !ok {
		return 0
	}
	if children {
		return ticks(f, 14, 15, 16, 17)
	}
	return ticks(f, 14, 15)
}

// clusterCPU is the CPU time of a cluster's processes so far: the
// postmaster, its exited children (backends of closed connections) and the
// live ones.
func clusterCPU(dataDir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	pm, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	_, f, ok := procStat(pm)
	if !ok {
		return 0, fmt.Errorf("postmaster %d is gone", pm)
	}
	total := ticks(f, 14, 15, 16, 17)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, f, ok := procStat(pid); ok && ppid == pm {
			total += ticks(f, 14, 15)
		}
	}
	return total, nil
}
