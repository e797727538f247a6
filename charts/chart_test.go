package charts_test

import (
	"maps"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// TestLint runs helm lint --strict (warnings are failures) with the default
// values and with the example that sets every option.
func TestLint(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"full values", []string{"-f", fullValues}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, tt.args...)...)
			if err != nil || !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint --strict %v: %v\n%s", tt.args, err, out)
			}
		})
	}
}

// TestRenderDefault checks the objects a plain `helm install nopii` makes.
func TestRenderDefault(t *testing.T) {
	r := render(t)
	d := mustDeployment(t, r, "nopii")
	checkAgent(t, r, d, agentWant{
		port: 8080, configMap: "nopii", serviceAccount: "nopii", hostname: "nopii",
		image: "ghcr.io/nopii/nopii:" + mustAppVersion(t),
		secretEnv: map[string]string{
			"NOPII_HMAC_KEY":    "nopii/hmac-key",
			"PROD_DATABASE_URL": "nopii/prod-database-url",
			"TWIN_DATABASE_URL": "nopii/twin-database-url",
		},
	})
	if len(r.deployments) != 1 || len(r.serviceMonitors) != 0 || len(r.networkPolicies) != 0 {
		t.Errorf("default values render %d Deployments, %d ServiceMonitors, %d NetworkPolicies; want the agent's only",
			len(r.deployments), len(r.serviceMonitors), len(r.networkPolicies))
	}
	if sa := r.serviceAccounts["nopii"]; sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount nopii: %+v, want one that does not mount its token", sa)
	}
}

// TestRenderFull checks every option of ci/full-values.yaml.
func TestRenderFull(t *testing.T) {
	r := render(t, "-f", fullValues)
	d := mustDeployment(t, r, "nopii-prod-eu")
	checkAgent(t, r, d, agentWant{
		port: 9102, configMap: "nopii-prod-eu", serviceAccount: "nopii-agent", hostname: "prod-eu-1",
		image: "registry.example.com/nopii/nopii@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		secretEnv: map[string]string{
			"NOPII_HMAC_KEY":       "nopii-secrets/hmac-key",
			"PROD_DATABASE_URL":    "nopii-secrets/prod-database-url",
			"TWIN_DATABASE_URL":    "nopii-twin/twin-database-url",
			"NOPII_AGENT_TOKEN":    "nopii-secrets/agent-token",
			"S3_ACCESS_KEY_ID":     "nopii-secrets/s3-access-key-id",
			"S3_SECRET_ACCESS_KEY": "nopii-secrets/s3-secret-access-key",
			"SLACK_WEBHOOK":        "nopii-secrets/slack-webhook (optional)",
		},
	})
	if got := d.Spec.Template.Spec.TerminationGracePeriodSeconds; got == nil || *got != 135 {
		t.Errorf("terminationGracePeriodSeconds %v, want graceSeconds 120 + 15", got)
	}
	if c := d.Spec.Template.Spec.Containers[0]; !slices.Contains(c.Args, "--grace=120s") || !slices.Contains(c.Args, "--reload-every=5s") {
		t.Errorf("agent args %q lack --grace=120s and --reload-every=5s", c.Args)
	}
	sm := r.serviceMonitors["nopii-prod-eu"]
	if sm == nil {
		t.Fatal("no ServiceMonitor nopii-prod-eu")
	}
	svc := r.services["nopii-prod-eu"]
	if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %+v does not scrape /metrics on the agent Service's http port", sm.Spec)
	}
	if sm.Spec.NamespaceSelector.MatchNames[0] != "data" {
		t.Errorf("ServiceMonitor looks in namespaces %v, want the release's", sm.Spec.NamespaceSelector.MatchNames)
	}

	np := r.networkPolicies["nopii-prod-eu"]
	if np == nil || !selects(np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels) || len(np.Spec.Ingress) != 1 ||
		np.Spec.Ingress[0].Ports[0].Port.String() != "http" || len(np.Spec.Egress) != 4 {
		t.Fatalf("agent NetworkPolicy %+v: want ingress on http only and egress to DNS, the dashboard and the two rules given", np)
	}

	dash := mustDeployment(t, r, "nopii-prod-eu-dashboard")
	pod := dash.Spec.Template.Spec
	checkPodSecurity(t, "dashboard", pod)
	c := pod.Containers[0]
	if want := []string{"dashboard", "--listen=:8090", "--log-format=json", "--log-level=info", "--secure-cookies"}; !slices.Equal(c.Args, want) {
		t.Errorf("dashboard args %q, want %q", c.Args, want)
	}
	if got := secretRefs(c.Env); !maps.Equal(got, map[string]string{
		"NOPII_DASHBOARD_ADMIN_TOKEN": "nopii-dashboard/admin-token",
		"NOPII_DASHBOARD_DSN":         "nopii-dashboard/database-url",
	}) {
		t.Errorf("dashboard secret env %v", got)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("dashboard readiness probe %+v, want GET /healthz on http", p)
	}
	dsvc := r.services["nopii-prod-eu-dashboard"]
	if dsvc == nil || !selects(dsvc.Spec.Selector, dash.Spec.Template.Labels) || selects(dsvc.Spec.Selector, d.Spec.Template.Labels) ||
		dsvc.Spec.Ports[0].TargetPort != intstr.FromString("http") || dsvc.Spec.Ports[0].Port != 8090 {
		t.Errorf("dashboard Service %+v must select the dashboard pods only, on 8090 → http", dsvc)
	}
	if *dash.Spec.Replicas != 1 {
		t.Errorf("dashboard replicas %d, want 1", *dash.Spec.Replicas)
	}
	dnp := r.networkPolicies["nopii-prod-eu-dashboard"]
	if dnp == nil || len(dnp.Spec.Ingress) != 1 || len(dnp.Spec.Ingress[0].From) != 2 ||
		!selects(dnp.Spec.Ingress[0].From[0].PodSelector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("dashboard NetworkPolicy %+v: want the agent's pods and the peers given", dnp)
	}
}

// TestExistingConfigMap: with agent.existingConfigMap the chart makes no
// ConfigMap and mounts the one named.
func TestExistingConfigMap(t *testing.T) {
	r := render(t, "--set", "agent.existingConfigMap=my-workflows")
	if len(r.configMaps) != 0 {
		t.Errorf("the chart made ConfigMaps %v, want none", keys(r.configMaps))
	}
	v := volume(mustDeployment(t, r, "nopii").Spec.Template.Spec, "config")
	if v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "my-workflows" {
		t.Errorf("config volume %+v, want ConfigMap my-workflows", v)
	}
}

// TestSchemaRejects: a wrong value fails helm template and helm lint, and
// the message names it.
func TestSchemaRejects(t *testing.T) {
	for _, tt := range []struct {
		set, want string
	}{
		{"agent.port=eighty", "/agent/port"},
		{"agent.port=70000", "/agent/port"},
		{"agent.prot=8080", "'prot' not allowed"},
		{"agent.reloadEvery=often", "/agent/reloadEvery"},
		{"agent.config=", "/agent/config"},
		{"agent.logLevel=loud", "/agent/logLevel"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"dashboard.enabled=yes", "/dashboard/enabled"},
		{"dashboard.replicas=2", "/dashboard/replicas"},
		{"secretEnv[0].name=hmac-key", "/secretEnv/0/name"},
		{"service.type=Ingress", "/service/type"},
		{"existingSecret=Not_A_Name", "/existingSecret"},
	} {
		t.Run(tt.set, func(t *testing.T) {
			for _, cmd := range [][]string{
				{"template", "nopii", chartDir, "--kube-version", kubeVersion, "--set", tt.set},
				{"lint", "--strict", chartDir, "--set", tt.set},
			} {
				out, err := runHelm(t, cmd...)
				if err == nil {
					t.Errorf("helm %s --set %s succeeded; want the schema to reject it", cmd[0], tt.set)
				} else if !strings.Contains(out, tt.want) {
					t.Errorf("helm %s --set %s fails without naming %s:\n%s", cmd[0], tt.set, tt.want, out)
				}
			}
		})
	}
}

// TestVersionInStep: the chart's appVersion is the version the Makefile
// stamps into the binary (exactly at a release tag, as a -dev suffix
// between releases), and the default image tag.
func TestVersionInStep(t *testing.T) {
	app := mustAppVersion(t)
	out, err := exec.Command("make", "-s", "-C", "..", "version").Output()
	if err != nil {
		t.Fatalf("make version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	if v != app && !strings.HasPrefix(v, app+"-dev.") {
		t.Errorf("make version prints %q; want %q or %s-dev.<commit>", v, app, app)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), ldflagVersion+"=${VERSION}") {
		t.Errorf("the Dockerfile does not stamp ${VERSION} with -X %s", ldflagVersion)
	}
}

// ldflagVersion is the variable that -ldflags -X sets to the version.
const ldflagVersion = "github.com/nopii/nopii/cmd.version"

func mustAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("nopii/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion %q: %v", chart.AppVersion, err)
	}
	return chart.AppVersion
}

type agentWant struct {
	port                                int32
	configMap, serviceAccount, hostname string
	image                               string
	secretEnv                           map[string]string // name → secret/key
}

// checkAgent asserts what the agent's Deployment, Service and ConfigMap
// must be whatever the values.
func checkAgent(t *testing.T, r *rendered, d *appsv1.Deployment, want agentWant) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("agent: replicas %v, strategy %q; want exactly 1 with Recreate (two agents would run the same copies)", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	pod := d.Spec.Template.Spec
	checkPodSecurity(t, "agent", pod)
	if pod.ServiceAccountName != want.serviceAccount || r.serviceAccounts[want.serviceAccount] == nil {
		t.Errorf("agent runs as ServiceAccount %q; want %q, rendered by the chart", pod.ServiceAccountName, want.serviceAccount)
	}
	if pod.Hostname != want.hostname {
		t.Errorf("pod hostname %q, want %q (the agent's default name)", pod.Hostname, want.hostname)
	}
	for k := range d.Spec.Template.Annotations {
		if strings.Contains(k, "checksum") {
			t.Errorf("pod annotation %s would restart the agent on a config change instead of letting it reload", k)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("agent pod has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != want.image {
		t.Errorf("agent image %q, want %q", c.Image, want.image)
	}

	// The port: --listen, the named container port, the probes, the Service.
	if !slices.Contains(c.Args, "--listen=:"+itoa(want.port)) {
		t.Errorf("agent args %q lack --listen=:%d", c.Args, want.port)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != want.port {
		t.Errorf("agent ports %+v, want http %d", c.Ports, want.port)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("agent %s probe %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}
	svc := r.services[d.Name]
	if svc == nil || !selects(svc.Spec.Selector, d.Spec.Template.Labels) || len(svc.Spec.Ports) != 1 ||
		svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("agent Service %+v must select the agent pod and target its http port", svc)
	}

	// The workflow file: a ConfigMap volume mounted as a directory, with
	// --config pointing into it.
	v := volume(pod, "config")
	if v == nil || v.ConfigMap == nil || v.ConfigMap.Name != want.configMap {
		t.Fatalf("config volume %+v, want ConfigMap %s", v, want.configMap)
	}
	m := mount(c, "config")
	if m == nil || m.SubPath != "" || m.SubPathExpr != "" || !m.ReadOnly {
		t.Fatalf("config mount %+v: want the ConfigMap mounted read-only as a directory, never subPath (which hides updates)", m)
	}
	cfgPath := flagValue(c.Args, "--config")
	if path.Dir(cfgPath) != m.MountPath {
		t.Errorf("--config %q is not in the config volume's directory %s", cfgPath, m.MountPath)
	}
	file := path.Base(cfgPath)
	if !slices.ContainsFunc(v.ConfigMap.Items, func(i corev1.KeyToPath) bool { return i.Key == file && i.Path == file }) {
		t.Errorf("config volume items %+v do not put %s at %s", v.ConfigMap.Items, file, file)
	}
	if cm := r.configMaps[want.configMap]; cm == nil || cm.Data[file] == "" {
		t.Errorf("ConfigMap %s has no %s", want.configMap, file)
	} else {
		// Every ${VAR} of the file without a default is set in the container.
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(cm.Data[file], -1) {
			if !env[m[1]] {
				t.Errorf("the workflow file reads ${%s}, which the container's env does not set", m[1])
			}
		}
	}

	// Secrets by reference only: no secret value in the manifest.
	if got := secretRefs(c.Env); !maps.Equal(got, want.secretEnv) {
		t.Errorf("agent secret env %v, want %v", got, want.secretEnv)
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil && strings.Contains(strings.ToUpper(e.Name), "KEY") {
			t.Errorf("env %s carries a literal value; secrets come from secretKeyRef", e.Name)
		}
	}

	// The root filesystem is read-only: /tmp is an emptyDir, and TMPDIR says so.
	tmp := mount(c, "tmp")
	if tmp == nil || tmp.MountPath != "/tmp" || volume(pod, "tmp") == nil || volume(pod, "tmp").EmptyDir == nil {
		t.Errorf("no emptyDir at /tmp for the read-only root filesystem")
	}
}

// checkPodSecurity asserts the restricted Pod Security Standard's settings.
func checkPodSecurity(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and RuntimeDefault seccomp", what, psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s pod mounts a ServiceAccount token it never uses", what)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s container %s securityContext %+v: want non-root, read-only root, no privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp", what, c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s container %s has no memory request and limit", what, c.Name)
		}
	}
}

func mustDeployment(t *testing.T, r *rendered, name string) *appsv1.Deployment {
	t.Helper()
	d := r.deployments[name]
	if d == nil {
		t.Fatalf("no Deployment %s; rendered %v", name, keys(r.deployments))
	}
	return d
}

// secretRefs lists the env vars taken from Secrets: name → "secret/key",
// with " (optional)" for optional ones.
func secretRefs(env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		out[e.Name] = ref.Name + "/" + ref.Key
		if ref.Optional != nil && *ref.Optional {
			out[e.Name] += " (optional)"
		}
	}
	return out
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func mount(c corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// selects reports whether a label selector matches the labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
