package s3test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nopii/nopii/internal/watchdog"
)

// The fixed credentials and region of every test server.
const (
	AccessKey = "nopii-test-access-key"
	SecretKey = "nopii-test-secret-key-not-for-production"
	Region    = "us-east-1"
)

const (
	dirPrefix    = "nopii-s3test-"
	portAttempts = 5
	logTailBytes = 4 << 10
	stopWait     = 10 * time.Second
)

// Server is a running versitygw owned by this process. Its methods are safe
// for concurrent use.
type Server struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Dir holds everything the server has: the buckets (data/), object
	// metadata (meta/), the gateway's log (versitygw.log) and its process
	// id (pid). Stop removes it.
	Dir string
	// AccessKey, SecretKey and Region are what clients sign requests with:
	// the package's constants of the same names.
	AccessKey, SecretKey, Region string

	mu       sync.Mutex
	stopped  bool
	proc     *os.Process
	exited   chan struct{} // closed once the gateway has exited
	exitErr  error         // its exit status, set before exited closes
	watchdog *watchdog.Watchdog

	clientOnce sync.Once
	client     *s3.Client
}

// Endpoint returns the server's URL, for clients that address buckets
// path-style: http://127.0.0.1:<port>.
func (s *Server) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.Port) }

// LogPath returns the path of the gateway's log.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "versitygw.log") }

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }
func (s *Server) metaDir() string { return filepath.Join(s.Dir, "meta") }
func (s *Server) pidPath() string { return filepath.Join(s.Dir, "pid") }

// Start finds (or builds) versitygw and starts a new server. The caller
// must Stop it; if the process dies first, the server's watchdog kills it
// and removes its directory. When the gateway does not come up, the error
// ends with the tail of its log.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepStale(time.Now().Add(-staleAfter)) })

	dir, err := os.MkdirTemp(os.TempDir(), dirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s := &Server{Dir: dir, AccessKey: AccessKey, SecretKey: SecretKey, Region: Region}
	for _, d := range []string{s.dataDir(), s.metaDir()} {
		if err := os.Mkdir(d, 0o755); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("create server directory: %w", err)
		}
	}
	if err := s.startWatchdog(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err == nil {
			logStart := fileSize(s.LogPath())
			err = s.launch(ctx, bin, port)
			if err != nil && attempt < portAttempts && ctx.Err() == nil && s.portTaken(logStart) {
				continue
			}
		}
		if err != nil {
			return nil, errors.Join(err, s.Stop())
		}
		return s, nil
	}
}

// launch starts the gateway on port and waits until it answers HTTP.
func (s *Server) launch(ctx context.Context, bin string, port int) error {
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	defer logf.Close() // the child has its own copy
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Not CommandContext: the server outlives the context that started it.
	cmd := exec.Command(bin,
		"--port", addr,
		"--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--quiet",      // no line per request on stdout
		"--keep-alive", // reuse connections, as S3 does
		"posix",
		// Metadata in files rather than extended attributes, which tmpfs
		// and some container file systems lack.
		"--sidecar", s.metaDir(),
		s.dataDir())
	cmd.Dir = s.Dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw %s: %w", bin, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.proc, s.exited, s.exitErr = cmd.Process, exited, nil
	s.mu.Unlock()
	// The watchdog kills whatever process this file names.
	if err := os.WriteFile(s.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		<-waitProcess(cmd, s, exited)
		return fmt.Errorf("start versitygw: %w", err)
	}
	waitProcess(cmd, s, exited)

	if err := waitReady(ctx, "http://"+addr+"/", exited); err != nil {
		if errors.Is(err, errExited) {
			return fmt.Errorf("start versitygw on %s: it exited (%v)\nversitygw log (tail):\n%s", addr, s.exitStatus(), s.logTail())
		}
		s.kill()
		return fmt.Errorf("start versitygw on %s: %w\nversitygw log (tail):\n%s", addr, err, s.logTail())
	}
	s.Port = port
	return nil
}

// waitProcess reaps the gateway in the background, recording its exit
// status and then closing exited. The pid file goes first, so that the
// watchdog never kills a process that merely inherited the number.
func waitProcess(cmd *exec.Cmd, s *Server, exited chan struct{}) <-chan struct{} {
	go func() {
		err := cmd.Wait()
		_ = os.Remove(s.pidPath())
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	return exited
}

func (s *Server) exitStatus() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

var errExited = errors.New("versitygw exited")

// waitReady polls url until the gateway answers HTTP at all: an anonymous
// GET / gets 403 AccessDenied from a healthy server.
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("waiting for it to answer: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill stops the gateway, politely first, and waits until it is gone.
func (s *Server) kill() {
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.mu.Unlock()
	if proc == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = proc.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(stopWait):
	}
	_ = proc.Kill()
	<-exited
}

// Stop kills the gateway and removes Dir. Calling it again does nothing
// and returns nil.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	// Disarm the watchdog first: it would race us to remove Dir.
	s.stopWatchdog()
	s.mu.Unlock()

	s.kill()
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("stop s3 server: %w", err)
	}
	return nil
}

// Client returns an S3 client for the server, signed with its credentials
// and addressing buckets path-style. It retries as the SDK does by default.
func (s *Server) Client() *s3.Client {
	s.clientOnce.Do(func() {
		s.client = s3.New(s3.Options{
			Region:       Region,
			BaseEndpoint: aws.String(s.Endpoint()),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		})
	})
	return s.client
}

// CreateBucket creates the bucket name.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// childEnv is the environment for versitygw: ours without the variables it
// reads its settings from (ROOT_*, VGW_*, …), so that nothing from the
// caller's shell changes the server under test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "VGW_") || strings.HasPrefix(name, "ROOT_") || strings.HasPrefix(name, "AWS_") ||
			name == "LOGFILE" || name == "WEBHOOK" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freePort asks the kernel for a free port. Another process may take it
// before the gateway binds it; Start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// portTaken reports whether the log, from offset on, says the gateway could
// not bind its port.
func (s *Server) portTaken(offset int64) bool {
	f, err := os.Open(s.LogPath())
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, _ := io.ReadAll(f)
	return strings.Contains(string(b), "address already in use")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns the end of the gateway's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return tail(b, logTailBytes)
}
