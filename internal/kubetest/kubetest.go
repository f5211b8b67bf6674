// Package kubetest starts a throwaway Kubernetes control plane for tests:
// etcd and kube-apiserver on 127.0.0.1, torn down when the test (or the
// script) ends. It is imported only by tests.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	// KubeletClientCert and KubeletClientKey are that client certificate
	// and its key (PEM), for tests that reach a kubelet API directly, as
	// metrics-server does.
	KubeletClientCert, KubeletClientKey string

	procs []*proc // etcd, then kube-apiserver
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
	cp, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

// StartIn is Start for callers without a testing.TB (testscript
// commands): the control plane keeps its files in dir, and the caller
// stops it with Stop. On error nothing is left running.
func StartIn(dir string) (_ *ControlPlane, err error) {
	etcdBin, err := etcd()
	if err != nil {
		return nil, err
	}
	apiBin, err := apiserver()
	if err != nil {
		return nil, err
	}
	p, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	cp := &ControlPlane{Kubeconfig: filepath.Join(dir, "kubeconfig"), CAFile: p.caFile, KubeletClientCert: p.kubeletCert, KubeletClientKey: p.kubeletKey}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}

	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	e, err := cp.start(dir, "etcd", etcdBin,
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--log-level=warn")
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(e, http.DefaultClient, clientURL+"/health", nil); err != nil {
		return nil, err
	}

	port := ports[2]
	host := "https://127.0.0.1:" + strconv.Itoa(port)
	a, err := cp.start(dir, "kube-apiserver", apiBin,
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
	if err != nil {
		return nil, err
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if err := waitHTTP(a, hc, host+"/readyz", http.Header{"Authorization": {"Bearer " + token}}); err != nil {
		return nil, err
	}

	cp.Config = &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
	}
	if err := writeKubeconfig(cp.Kubeconfig, host, p.caPEM); err != nil {
		return nil, err
	}
	if cp.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return nil, err
	}
	if err := ensureDefaultServiceAccount(cp.Client); err != nil {
		return nil, err
	}
	return cp, nil
}

// start starts a process of the control plane, which Stop stops.
func (cp *ControlPlane) start(dir, name, bin string, args ...string) (*proc, error) {
	p, err := startProc(dir, name, bin, args...)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// Stop stops the apiserver, then etcd. It does not remove their files.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop()
	}
	cp.procs = nil
}

// freePorts is n distinct TCP ports of 127.0.0.1, free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// waitHTTP polls url until it answers 200, failing with the process's log
// if the process ends or readyTimeout passes.
func waitHTTP(p *proc, c *http.Client, url string, h http.Header) error {
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		if done, err := p.exited(); done {
			if err == nil {
				err = errors.New("exit status 0")
			}
			return fmt.Errorf("%s exited while starting: %w\n%s", p.name, err, p.tail())
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header = h
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (%s): %s\n%s", p.name, readyTimeout, url, last, p.tail())
}

// ensureDefaultServiceAccount creates default/default, retrying while the
// apiserver is still creating the default namespace.
func ensureDefaultServiceAccount(c kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	for {
		_, err := c.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Create(ctx, sa, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating the default service account: %w", err)
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
