// Package s3test starts private, throwaway S3 servers for tests, so that the
// S3 feed is tested against a real S3 implementation and `go test ./...`
// needs no Docker, no cloud account and no shared server.
//
// The server is versitygw (github.com/versity/versitygw), an S3 gateway
// written in Go, run with its posix backend: buckets are directories under
// os.TempDir()/nopii-s3test-*/data, object metadata lives in a sidecar
// directory next to it (so the file system needs no extended attributes),
// and the gateway listens on 127.0.0.1 at a free port with fixed test
// credentials, AccessKey and SecretKey, in region us-east-1.
//
// Tests usually share one server per package and take a fresh bucket per
// test:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
//	func TestPut(t *testing.T) {
//		srv := s3test.MustServer(t)
//		bucket := s3test.MustBucket(t)
//		…
//	}
//
// The binary is found through $NOPII_VERSITYGW (a path to the binary), then
// PATH, then the cache $NOPII_CACHE/gobin/versitygw-<Version>/versitygw
// ($NOPII_CACHE defaults to $HOME/.cache/nopii). When none has it, the
// first test builds it there with `go install …@<Version>`, which takes a
// minute or two and needs the Go module proxy; a file lock keeps parallel
// test binaries from building it twice. .ci/run builds it ahead of the
// tests and sets $NOPII_VERSITYGW.
//
// A server must not outlive its process. As internal/pgtest does, each one
// has a watchdog, a tiny shell in its own process group blocked reading a
// pipe that only the owning process holds; when that process exits for any
// reason, including a test timeout or SIGKILL, the pipe closes and the
// watchdog kills the gateway and removes its directory. Start also removes
// directories that are hours old and whose gateway is gone.
//
// The package is for Unix systems.
package s3test
