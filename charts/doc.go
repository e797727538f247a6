// Package charts holds the Helm chart charts/nopii and, in its tests, the
// checks that keep it installable and true to the binary:
//
//   - helm lint --strict with the default values and with
//     nopii/ci/full-values.yaml, which sets every option;
//   - helm template decoded strictly into the Kubernetes API types
//     (k8s.io/api with sigs.k8s.io/yaml's UnmarshalStrict), so that a
//     misspelled field fails, and assertions on what matters: one agent with
//     the Recreate strategy, probes on /healthz and /readyz, the restricted
//     securityContext, the workflow file mounted as a directory (not
//     subPath, so that ConfigMap updates reach the agent's reload), secrets
//     by reference only;
//   - values.schema.json rejecting wrong values at install time;
//   - the rendered agent and dashboard containers run as real processes:
//     the binary built as the Dockerfile builds it, with the rendered args,
//     the rendered env (secretKeyRefs resolved from a test map) and the
//     rendered ConfigMap laid out the way the kubelet lays it out, against a
//     real PostgreSQL; /readyz must answer 200 and a ConfigMap update must
//     be reloaded.
//
// The tests find helm through $NOPII_HELM, PATH, $(go env GOPATH)/bin or the
// cache that .ci/run fills (~/.cache/nopii/gobin/helm-<version>); a
// missing helm skips them, except under CI, where it fails them. Install it
// with: go install helm.sh/helm/v3/cmd/helm@v3.20.2
package charts
