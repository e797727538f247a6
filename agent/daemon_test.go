package agent_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/atomicdir"
)

// TestDaemonReloadsConfigMapVolume publishes the workflow file the way the
// kubelet updates a ConfigMap mounted as a directory (a new hidden version
// directory and an atomic swap of the ..data symlink) and checks that the
// running daemon puts each valid version in force and keeps the previous one
// when a version does not parse.
func TestDaemonReloadsConfigMapVolume(t *testing.T) {
	listen := freeAddr(t)
	workflowFile := func(workflow string) map[string][]byte {
		return map[string][]byte{"nopii.yaml": []byte(`version: 1
agent:
  name: reload-test
  listen: ` + listen + `
workflows:
  - name: ` + workflow + `
    inputs:
      - name: prod
        dsn: postgres://nopii@127.0.0.1:1/prod
        tables:
          - name: public.customer
    feeds:
      - type: files
        path: /nonexistent/out
        format: csv
`)}
	}
	dir := filepath.Join(t.TempDir(), "etc-nopii")
	if err := atomicdir.Write(dir, workflowFile("first")); err != nil {
		t.Fatal(err)
	}
	d := &agent.Daemon{
		ConfigPath: filepath.Join(dir, "nopii.yaml"),
		Load:       func(path string) (*config.Config, error) { return config.Load(path, config.Options{}) },
		PollEvery:  20 * time.Millisecond,
		Version:    "test",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "the agent serves /healthz", func() bool {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	inForce := func(want string) func() bool {
		return func() bool {
			h := d.Status()
			return len(h.Workflows) == 1 && h.Workflows[0].Name == want
		}
	}
	waitFor(t, "the first version is in force", inForce("first"))

	if err := atomicdir.Write(dir, workflowFile("second")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped-in version is in force", inForce("second"))

	if err := atomicdir.Write(dir, map[string][]byte{"nopii.yaml": []byte("version: 1\nworkflows: [ {name: oops\n")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broken version is reported", func() bool { return d.Status().ConfigError != "" })
	if !inForce("second")() {
		t.Errorf("after a broken version the workflows are %+v, want the previous version's", d.Status().Workflows)
	}

	if err := atomicdir.Write(dir, workflowFile("third")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a fixed version is in force again", inForce("third"))
	if h := d.Status(); h.ConfigError != "" {
		t.Errorf("config error %q stays after a valid version", h.ConfigError)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after 10s: %s", what)
}
