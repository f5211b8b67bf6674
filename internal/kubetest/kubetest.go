// Package kubetest starts a throwaway Kubernetes control plane for tests:
// etcd and kube-apiserver on 127.0.0.1, torn down when the test ends. It
// is imported only by tests.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Config reaches the apiserver as a cluster admin (token auth,
	// everything allowed).
	Config *rest.Config
	// Kubeconfig is a file holding the same, for commands.
	Kubeconfig string
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// CAFile is the cluster CA (PEM). It signed the client certificate
	// the apiserver presents to kubelets, which reaches them by their
	// InternalIP.
	CAFile string
}

// token is the admin's bearer token in the apiserver's token file.
const token = "banger-kubetest-admin"

// readyTimeout bounds each of etcd's and the apiserver's start (the
// apiserver is ready in about 4 s on an idle machine).
const readyTimeout = 2 * time.Minute

// Start starts etcd and kube-apiserver on free ports of 127.0.0.1 and
// waits until the apiserver is ready, with a "default" service account in
// the default namespace (there is no controller-manager to make it).
// Everything is stopped and removed when t ends. The first call on a
// fresh machine builds kube-apiserver (scripts/build-control-plane.sh).
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	etcdBin, apiBin := etcd(t), apiserver(t)
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	clientURL := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	peerURL := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	e := startProc(t, dir, "etcd", etcdBin,
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--log-level=warn")
	waitHTTP(t, e, http.DefaultClient, clientURL+"/health", nil)

	port := freePort(t)
	host := "https://127.0.0.1:" + strconv.Itoa(port)
	a := startProc(t, dir, "kube-apiserver", apiBin,
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+p.serveCert, "--tls-private-key-file="+p.serveKey,
		"--token-auth-file="+tokens, "--authorization-mode=AlwaysAllow",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p.saPublic, "--service-account-signing-key-file="+p.saPrivate,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--kubelet-client-certificate="+p.kubeletCert, "--kubelet-client-key="+p.kubeletKey,
		"--kubelet-preferred-address-types=InternalIP")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	waitHTTP(t, a, hc, host+"/readyz", http.Header{"Authorization": {"Bearer " + token}})

	cp := &ControlPlane{
		Config: &rest.Config{
			Host:            host,
			BearerToken:     token,
			TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		},
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
		CAFile:     p.caFile,
	}
	if err := writeKubeconfig(cp.Kubeconfig, host, p.caPEM); err != nil {
		t.Fatal(err)
	}
	cp.Client, err = kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ensureDefaultServiceAccount(t, cp.Client)
	return cp
}

// waitHTTP polls url until it answers 200, failing t with the process's
// log if the process ends or readyTimeout passes.
func waitHTTP(t testing.TB, p *proc, c *http.Client, url string, h http.Header) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		if done, err := p.exited(); done {
			t.Fatalf("%s exited while starting: %v\n%s", p.name, err, p.tail())
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s (%s): %s\n%s", p.name, readyTimeout, url, last, p.tail())
}

// ensureDefaultServiceAccount creates default/default, retrying while the
// apiserver is still creating the default namespace.
func ensureDefaultServiceAccount(t testing.TB, c kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	for {
		_, err := c.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Create(ctx, sa, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("creating the default service account: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeKubeconfig writes a kubeconfig for the admin token.
func writeKubeconfig(path, host string, ca []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	cfg.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
