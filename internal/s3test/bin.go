package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Version is the versitygw release the tests run against; the cache keeps
// one binary per version.
const Version = "v1.8.0"

// Module is the package that go install builds.
const Module = "github.com/versity/versitygw/cmd/versitygw"

// EnvBin names the environment variable that holds the path of a versitygw
// binary. It wins over PATH and the cache.
const EnvBin = "NOPII_VERSITYGW"

// EnvCache names the environment variable of nopii's cache directory, which
// defaults to $HOME/.cache/nopii; .ci/run uses the same.
const EnvCache = "NOPII_CACHE"

const binName = "versitygw"

// buildTimeout bounds go install; a cold build with downloads takes about
// two minutes.
const buildTimeout = 15 * time.Minute

// Binary returns the path of the versitygw binary, building it into the
// cache when neither $NOPII_VERSITYGW nor PATH has one. See the package
// documentation for the order.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file: point it at a versitygw binary (go install %s@%s), or unset it", EnvBin, p, Module, Version)
		}
		return p, nil
	}
	if p, err := exec.LookPath(binName); err == nil {
		return p, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	return buildCached(ctx, dir)
}

// cacheDir is where the cached binary of Version lives.
func cacheDir() (string, error) {
	root := os.Getenv(EnvCache)
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find versitygw: no %s, not on PATH, and no home directory for the cache (set %s or %s): %w", EnvBin, EnvBin, EnvCache, err)
		}
		root = filepath.Join(home, ".cache", "nopii")
	}
	return filepath.Join(root, "gobin", "versitygw-"+Version), nil
}

// buildCached returns dir/versitygw, building it first if it is missing.
// The build holds an exclusive lock on dir/.lock, so that test binaries
// running in parallel wait for one build instead of each running their own.
func buildCached(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, binName)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build versitygw: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("build versitygw: %w", err)
	}
	defer unlock()
	if isExecutable(bin) { // built by whoever held the lock before us
		return bin, nil
	}

	// Holding the lock, nobody else is building: leftovers of builds that
	// were killed can go.
	if old, _ := filepath.Glob(filepath.Join(dir, ".build-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	// go install into a scratch GOBIN on the same file system, then rename:
	// a build killed half way never leaves a truncated binary at bin.
	tmp, err := os.MkdirTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("build versitygw: %w", err)
	}
	defer os.RemoveAll(tmp)

	goTool, err := goBinary()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "s3test: building versitygw %s into %s (once; a minute or two)…\n", Version, dir)
	started := time.Now()
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(bctx, goTool, "install", Module+"@"+Version)
	// Outside any module, so that the caller's go.mod, go.work and vendor
	// directory play no part.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build versitygw: go install %s@%s: %w: %s\n(set %s to a versitygw binary to skip the build)",
			Module, Version, err, tail(out, 2000), EnvBin)
	}
	if err := os.Rename(filepath.Join(tmp, binName), bin); err != nil {
		return "", fmt.Errorf("build versitygw: %w", err)
	}
	fmt.Fprintf(os.Stderr, "s3test: built versitygw %s in %s\n", Version, time.Since(started).Round(time.Second))
	return bin, nil
}

// goBinary finds the go command: on PATH, else in the GOROOT that built us.
func goBinary() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	//lint:ignore SA1019 the fallback for a PATH without go; go test sets GOROOT.
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); isExecutable(p) {
		return p, nil
	}
	return "", fmt.Errorf("build versitygw: the go command is neither on PATH nor in GOROOT: set %s to a versitygw binary (go install %s@%s)", EnvBin, Module, Version)
}

// lockFile takes an exclusive flock on path, waiting for it as long as ctx
// allows. The lock goes with the process, so a killed build frees it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another process building versitygw (lock %s): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// tail returns at most the last n bytes of b, trimmed.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "…" + string(b)
	}
	return strings.TrimSpace(string(b))
}
