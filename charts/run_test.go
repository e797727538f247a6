package charts_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nopii/nopii/internal/atomicdir"
	"github.com/nopii/nopii/internal/fixture"
	"github.com/nopii/nopii/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRenderedPodsRun starts the chart's containers as processes: the binary
// built the way the Dockerfile builds it, with the args and env the chart
// renders (secretKeyRefs resolved from a map, as the kubelet resolves them
// from Secrets) and every volume the pod mounts laid out in a directory (the
// ConfigMap the way the kubelet writes it). So the flags, env var names and
// paths the chart sets are the ones the binary reads.
func TestRenderedPodsRun(t *testing.T) {
	mustHelm(t)
	app := mustAppVersion(t)
	bin := buildLikeDockerfile(t, app)
	if out, err := exec.Command(bin, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "nopii "+app {
		t.Fatalf("nopii version: %q, %v; want nopii %s", out, err, app)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), `ENTRYPOINT ["/usr/local/bin/nopii"]`) {
		t.Fatal("the Dockerfile's ENTRYPOINT is not the nopii binary, which the chart's args assume")
	}

	const (
		hmacKey    = "chart-test-hmac-key-0123456789abcdef0123456789"
		agentToken = "chart-test-agent-token-7f3a"
		s3Secret   = "chart-test-s3-secret-91bd"
		adminToken = "chart-test-admin-token-5c2e9d"
	)
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)

	for _, tt := range []struct {
		name, deployment string
		args             []string
		secrets          map[string]map[string]string
	}{
		{
			name: "default values", deployment: "nopii",
			secrets: map[string]map[string]string{"nopii": {
				"hmac-key": hmacKey, "prod-database-url": prodDSN, "twin-database-url": twinDSN}},
		},
		{
			name: "full values", deployment: "nopii-prod-eu", args: []string{"-f", fullValues},
			// slack-webhook is optional and left out: the pod starts without it.
			secrets: map[string]map[string]string{
				"nopii-secrets": {"hmac-key": hmacKey, "prod-database-url": prodDSN, "agent-token": agentToken,
					"s3-access-key-id": "chart-test-access-key", "s3-secret-access-key": s3Secret},
				"nopii-twin": {"twin-database-url": twinDSN},
			},
		},
	} {
		t.Run("agent with "+tt.name, func(t *testing.T) {
			port := freePort(t)
			r := render(t, append(tt.args, "--set", "agent.port="+port)...)
			d := mustDeployment(t, r, tt.deployment)
			p := startContainer(t, bin, d.Spec.Template.Spec, r.configMaps, tt.secrets)
			base := "http://127.0.0.1:" + port
			p.waitFor(t, "/healthz answers 200", func() bool { return httpStatus(base+"/healthz", "") == 200 })
			p.waitFor(t, "/readyz answers 200 (the workflow file loaded, the input database reached)", func() bool {
				return httpStatus(base+"/readyz", "") == 200
			})

			// A ConfigMap update reaches the running agent.
			pod := d.Spec.Template.Spec
			cm := volume(pod, "config").ConfigMap.Name
			if err := atomicdir.Write(p.mounts[mount(pod.Containers[0], "config").MountPath], map[string][]byte{"nopii.yaml": []byte(strings.TrimRight(r.configMaps[cm].Data["nopii.yaml"], "\n") + "\n# edited\n")}); err != nil {
				t.Fatal(err)
			}
			p.waitFor(t, "the updated workflow file is reloaded", func() bool {
				return strings.Contains(httpBody(base+"/metrics"), `nopii_config_reloads_total{result="applied"} 1`)
			})

			p.stop(t)
			for _, secret := range []string{hmacKey, agentToken, s3Secret} {
				if strings.Contains(p.out.String(), secret) {
					t.Errorf("a secret from the Secret appears in the agent's logs")
				}
			}
		})
	}

	t.Run("dashboard", func(t *testing.T) {
		port := freePort(t)
		r := render(t, "-f", fullValues, "--set", "dashboard.port="+port)
		d := mustDeployment(t, r, "nopii-prod-eu-dashboard")
		p := startContainer(t, bin, d.Spec.Template.Spec, r.configMaps, map[string]map[string]string{
			"nopii-dashboard": {"admin-token": adminToken, "database-url": pgtest.MustDatabase(t)}})
		base := "http://127.0.0.1:" + port
		p.waitFor(t, "/healthz answers 200 (the dashboard reached its database)", func() bool { return httpStatus(base+"/healthz", "") == 200 })
		if got := httpStatus(base+"/api/v1/agents", adminToken); got != 200 {
			t.Errorf("GET /api/v1/agents with the admin token from the Secret: %d, want 200", got)
		}
		if got := httpStatus(base+"/api/v1/agents", "wrong-token-0123456789"); got != 401 {
			t.Errorf("GET /api/v1/agents with a wrong token: %d, want 401", got)
		}
		p.stop(t)
	})
}

// buildLikeDockerfile builds cmd/nopii with the Dockerfile's version stamp.
// It keeps cgo as go test has it, so that the packages come from the build
// cache that the other tests fill (CGO_ENABLED=0 and -trimpath would compile
// every dependency again: minutes on CI's two cores); instead it checks that
// every package of the binary builds without cgo, as the Dockerfile needs.
func buildLikeDockerfile(t *testing.T, version string) string {
	t.Helper()
	list := exec.Command("go", "list", "-e", "-deps", "-f", "{{with .Error}}{{.ImportPath}}: {{.}}{{end}}", "../cmd/nopii")
	list.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := list.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("CGO_ENABLED=0 go list -deps ../cmd/nopii: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "nopii")
	if out, err := exec.Command("go", "build", "-ldflags", "-X "+ldflagVersion+"="+version, "-o", bin, "../cmd/nopii").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is one container run as a process of the test.
type process struct {
	cmd    *exec.Cmd
	out    *fixture.Buffer
	exited chan struct{}
	err    error
	// mounts maps each mountPath of the container to its directory here.
	mounts map[string]string
}

// startContainer runs the pod's only container with the test's binary as
// the image's ENTRYPOINT: secretKeyRefs come from secrets (name → key →
// value), a missing non-optional key failing as the pod would fail to
// start; each volume mount is a fresh directory, a ConfigMap volume filled
// with the rendered ConfigMap's items the way the kubelet writes them; and
// every mountPath in the args and env is rewritten to its directory.
func startContainer(t *testing.T, bin string, pod corev1.PodSpec, configMaps map[string]*corev1.ConfigMap, secrets map[string]map[string]string) *process {
	t.Helper()
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("the pod has %d containers and %d init containers; the test runs one", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("the container overrides the image's ENTRYPOINT with %q", c.Command)
	}
	p := &process{out: &fixture.Buffer{}, exited: make(chan struct{}), mounts: map[string]string{}}
	for _, m := range c.VolumeMounts {
		dir := t.TempDir()
		p.mounts[m.MountPath] = dir
		v := volume(pod, m.Name)
		switch {
		case v == nil:
			t.Fatalf("mount %s names no volume", m.Name)
		case v.ConfigMap != nil:
			cm := configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s is not rendered", m.Name, v.ConfigMap.Name)
			}
			files := map[string][]byte{}
			for _, it := range v.ConfigMap.Items {
				data, ok := cm.Data[it.Key]
				if !ok {
					t.Fatalf("ConfigMap %s has no key %s", cm.Name, it.Key)
				}
				files[it.Path] = []byte(data)
			}
			if err := atomicdir.Write(dir, files); err != nil {
				t.Fatal(err)
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: the test knows ConfigMap and emptyDir volumes only", m.Name)
		}
	}
	// The longest mountPath first, so that /a/b wins over /a.
	paths := make([]string, 0, len(p.mounts))
	for mp := range p.mounts {
		paths = append(paths, mp)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	local := func(s string) string {
		for _, mp := range paths {
			if i := strings.Index(s, mp); i >= 0 && (len(s) == i+len(mp) || s[i+len(mp)] == '/') {
				return s[:i] + p.mounts[mp] + s[i+len(mp):]
			}
		}
		return s
	}

	// The container runtime sets HOME from the image's /etc/passwd.
	env := []string{"HOME=" + t.TempDir()}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+local(e.Value))
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				t.Fatalf("env %s: Secret %s has no key %s, so the pod would not start", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+v)
		default:
			t.Fatalf("env %s: the test resolves secretKeyRef only", e.Name)
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = local(a)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s %s output:\n%s", c.Name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// waitFor polls ok for up to 30 seconds, failing early if the process exits.
func (p *process) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("the process exited (%v) before: %s", p.err, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("after 30s: %s", what)
}

// stop sends SIGTERM, as the kubelet does, and expects exit status 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", p.err)
		}
	case <-time.After(30 * time.Second):
		t.Error("still running 30s after SIGTERM")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// httpStatus GETs url, with a bearer token when one is given; 0 when it
// cannot connect.
func httpStatus(url, token string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func httpBody(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
