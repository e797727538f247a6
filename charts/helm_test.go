package charts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// helmVersion is the helm that .ci/run installs; the README names it too.
const helmVersion = "v3.20.2"

// kubeVersion is what helm template renders for: helm built with go install
// does not know its own default (it assumes 1.20, below the chart's
// kubeVersion).
const kubeVersion = "1.31.0"

const (
	chartDir   = "nopii"
	fullValues = "nopii/ci/full-values.yaml"
)

// mustHelm returns the path of helm: $NOPII_HELM, else helm on PATH, else
// in $(go env GOPATH)/bin, else where .ci/run caches it
// (${NOPII_CACHE:-~/.cache/nopii}/gobin/helm-<version>/helm). Without one
// the test is skipped, or fails under CI, which must run every test.
func mustHelm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NOPII_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	var candidates []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(dir, "bin", "helm"))
		}
	}
	cache := os.Getenv("NOPII_CACHE")
	if home, err := os.UserHomeDir(); cache == "" && err == nil {
		cache = filepath.Join(home, ".cache", "nopii")
	}
	if cache != "" {
		candidates = append(candidates, filepath.Join(cache, "gobin", "helm-"+helmVersion, "helm"))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "helm not found ($NOPII_HELM, PATH, $(go env GOPATH)/bin): go install helm.sh/helm/v3/cmd/helm@" + helmVersion
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runHelm runs helm and returns its combined output and exit error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(mustHelm(t), args...)
	// A private HOME: helm keeps repositories and plugins under it.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rendered is the chart's output, every document decoded into its API type.
type rendered struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	networkPolicies map[string]*networkingv1.NetworkPolicy
	serviceMonitors map[string]*serviceMonitor
}

// render runs helm template for release "nopii" with the given extra
// arguments (-f FILE, --set K=V) and decodes the result strictly.
func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "nopii", chartDir, "--namespace", "data", "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	r, err := decode([]byte(out))
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	return r
}

// decode splits a multi-document stream and decodes each document strictly
// into the type of its kind: an unknown or misspelled field is an error, as
// is a kind the chart is not expected to make.
func decode(stream []byte) (*rendered, error) {
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		networkPolicies: map[string]*networkingv1.NetworkPolicy{}, serviceMonitors: map[string]*serviceMonitor{},
	}
	for _, doc := range bytes.Split(stream, []byte("\n---\n")) {
		if len(bytes.TrimSpace(bytes.TrimPrefix(doc, []byte("---")))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, err
		}
		var obj interface{ GetName() string }
		var add func()
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			obj, add = o, func() { r.deployments[o.Name] = o }
		case "v1 Service":
			o := &corev1.Service{}
			obj, add = o, func() { r.services[o.Name] = o }
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, add = o, func() { r.configMaps[o.Name] = o }
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			obj, add = o, func() { r.serviceAccounts[o.Name] = o }
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			obj, add = o, func() { r.networkPolicies[o.Name] = o }
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &serviceMonitor{}
			obj, add = o, func() { r.serviceMonitors[o.Name] = o }
		default:
			return nil, &unexpectedKind{tm.APIVersion, tm.Kind}
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, &decodeError{tm.Kind, err}
		}
		add()
	}
	return r, nil
}

type unexpectedKind struct{ apiVersion, kind string }

func (e *unexpectedKind) Error() string {
	return "the chart renders " + e.apiVersion + " " + e.kind + ", which the test does not know"
}

type decodeError struct {
	kind string
	err  error
}

func (e *decodeError) Error() string { return "decode " + e.kind + " strictly: " + e.err.Error() }

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) that the chart uses; its Go types live in a
// module far too large to import for one object, and strict decoding into
// this subset still catches a misspelled field.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}
