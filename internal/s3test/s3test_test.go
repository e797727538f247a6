package s3test_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nopii/nopii/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

func TestSharedServer(t *testing.T) {
	t.Parallel()
	srv := s3test.MustServer(t)
	if srv2 := s3test.MustServer(t); srv2 != srv {
		t.Fatalf("MustServer returned two servers")
	}
	if want := "http://127.0.0.1:" + strconv.Itoa(srv.Port); srv.Endpoint() != want {
		t.Errorf("Endpoint() = %q, want %q", srv.Endpoint(), want)
	}
	if srv.AccessKey != s3test.AccessKey || srv.SecretKey != s3test.SecretKey || srv.Region != s3test.Region {
		t.Errorf("credentials %q/%q/%q, want the package's constants", srv.AccessKey, srv.SecretKey, srv.Region)
	}

	bucket := s3test.MustBucket(t)
	ctx := t.Context()
	c := srv.Client()
	body := []byte("hello, lake")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/b/c.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a/b/c.txt")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatalf("read object: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("GetObject = %q, want %q", got, body)
	}
	// The posix backend keeps objects as files under the bucket directory.
	if onDisk, err := os.ReadFile(filepath.Join(srv.Dir, "data", bucket, "a", "b", "c.txt")); err != nil || !bytes.Equal(onDisk, body) {
		t.Errorf("object on disk = %q, %v; want %q", onDisk, err, body)
	}

	if err := srv.CreateBucket(ctx, bucket); err == nil || !strings.Contains(err.Error(), "create bucket "+bucket) {
		t.Errorf("CreateBucket of an existing bucket: %v, want an error naming it", err)
	}
}

func TestBucketNames(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"plain", "With Spaces/And_Under", strings.Repeat("long", 30), "---"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			// MustBucket fails the test if the server refuses the name.
			name := s3test.MustBucket(t)
			if len(name) > 63 || strings.ToLower(name) != name {
				t.Errorf("bucket name %q: longer than 63 bytes or not lower case", name)
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	srv, err := s3test.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if err := srv.CreateBucket(ctx, "one"); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, stat %s: %v; want it gone", srv.Dir, err)
	}
	if nc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port)), time.Second); err == nil {
		nc.Close()
		t.Errorf("port %d still answers after Stop", srv.Port)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestBadBinary(t *testing.T) {
	// Not parallel: it changes the environment.
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tc := range []struct {
		name, bin, want string
	}{
		{"missing", missing, "NOPII_VERSITYGW=" + missing + " is not an executable file"},
		{"not a gateway", "/bin/false", "start versitygw on 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(s3test.EnvBin, tc.bin)
			srv, err := s3test.Start(t.Context())
			if err == nil {
				srv.Stop()
				t.Fatalf("Start with %s=%s succeeded", s3test.EnvBin, tc.bin)
			}
			t.Logf("Start: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say what went wrong (want %q)", err, tc.want)
			}
		})
	}
}

// TestWatchdog starts a server in a child process that exits without
// stopping it, as a test binary killed by -timeout would, and expects the
// gateway to be killed and its directory removed anyway.
func TestWatchdog(t *testing.T) {
	if os.Getenv("S3TEST_WATCHDOG_CHILD") == "1" {
		srv, err := s3test.Start(context.Background())
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println(srv.Port, srv.Dir)
		os.Exit(0) // no Stop, no deferred cleanup
	}
	t.Parallel()

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWatchdog$")
	cmd.Env = append(os.Environ(), "S3TEST_WATCHDOG_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var port int
	var dir string
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		t.Fatalf("child printed nothing")
	}
	if _, err := fmt.Sscan(sc.Text(), &port, &dir); err != nil || !strings.Contains(dir, "nopii-s3test-") {
		t.Fatalf("child printed %q", out)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		nc, dialErr := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if dialErr == nil {
			nc.Close()
		}
		if errors.Is(statErr, os.ErrNotExist) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after its process exited, server %s still exists (stat: %v) or answers on %d (dial: %v)", dir, statErr, port, dialErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
