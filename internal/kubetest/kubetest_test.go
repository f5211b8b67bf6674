package kubetest

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// TestStart: the control plane answers as a cluster admin, through both
// the rest.Config and the kubeconfig file, and has the default service
// account.
func TestStart(t *testing.T) {
	cp := Start(t)
	ctx := context.Background()
	v, err := cp.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %s, want %s", v.GitVersion, Version)
	}
	if _, err := cp.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default service account: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != cp.Config.Host || cfg.BearerToken != cp.Config.BearerToken {
		t.Errorf("kubeconfig reaches %s with token %q, want %s", cfg.Host, cfg.BearerToken, cp.Config.Host)
	}
}

// TestStartInStop: a control plane started without a testing.TB answers
// until Stop, and not after.
func TestStartInStop(t *testing.T) {
	cp, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Client.Discovery().ServerVersion(); err != nil {
		cp.Stop()
		t.Fatal(err)
	}
	cp.Stop()
	if _, err := cp.Client.Discovery().ServerVersion(); err == nil {
		t.Error("the apiserver still answers after Stop")
	}
}
