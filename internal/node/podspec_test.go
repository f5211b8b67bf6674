package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/paths"
)

func TestVMName(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct{ ns, name string }{
		{"default", "web"},
		{long, long},
		{"kube-system", "dns.example-"},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: tc.name, UID: types.UID("uid-" + tc.name)}}
		n := vmName(pod)
		if err := paths.ValidateName("VM", n); err != nil {
			t.Errorf("vmName(%s/%s) = %q: %v", tc.ns, tc.name, n, err)
		}
		if !isPodVM(n) {
			t.Errorf("isPodVM(%q) = false", n)
		}
		other := pod.DeepCopy()
		other.UID = "another"
		if vmName(other) == n {
			t.Errorf("two UIDs give the same VM name %q", n)
		}
	}
}

func TestPodResources(t *testing.T) {
	q := resource.MustParse
	ctr := func(limits, requests corev1.ResourceList) corev1.Container {
		return corev1.Container{Resources: corev1.ResourceRequirements{Limits: limits, Requests: requests}}
	}
	for _, tc := range []struct {
		name      string
		ctrs      []corev1.Container
		cpus, mem int
	}{
		{"defaults", []corev1.Container{{}}, 1, 512},
		{"limits", []corev1.Container{ctr(corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, nil)}, 2, 1024},
		{"requests when no limits", []corev1.Container{ctr(nil, corev1.ResourceList{"cpu": q("250m"), "memory": q("100M")})}, 1, 96},
		{"limits win over requests", []corev1.Container{ctr(corev1.ResourceList{"memory": q("256Mi")}, corev1.ResourceList{"memory": q("128Mi"), "cpu": q("1500m")})}, 2, 256},
		{"summed over containers", []corev1.Container{
			ctr(corev1.ResourceList{"cpu": q("500m"), "memory": q("256Mi")}, nil),
			ctr(corev1.ResourceList{"cpu": q("700m"), "memory": q("256Mi")}, nil),
		}, 2, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpus, mem := podResources(&corev1.Pod{Spec: corev1.PodSpec{Containers: tc.ctrs}})
			if cpus != tc.cpus || mem != tc.mem {
				t.Errorf("podResources = %d CPUs, %d MiB; want %d, %d", cpus, mem, tc.cpus, tc.mem)
			}
		})
	}
}

// TestMainScript runs the script with the host's /bin/sh: the command
// sees its environment, working directory and arguments, its output goes
// to main.log and its exit status to exit.
func TestMainScript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod")
	wd := t.TempDir()
	c := &corev1.Container{
		Name:       "main",
		Command:    []string{"/bin/sh", "-c"},
		Args:       []string{`echo "$GREETING from $(pwd)"; echo "it's $1" >&2; exit 7`, "arg0", "quoted 'one'"},
		Env:        []corev1.EnvVar{{Name: "GREETING", Value: "hello; $(rm -rf /)"}},
		WorkingDir: wd,
	}
	script, err := mainScript(c, image.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s\n%s", err, out, script)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "main.log"))
	want := "hello; $(rm -rf /) from " + wd + "\nit's quoted 'one'\n"
	if string(log) != want {
		t.Errorf("main.log = %q, want %q", log, want)
	}
	exit, _ := os.ReadFile(filepath.Join(dir, "exit"))
	if string(exit) != "7\n" {
		t.Errorf("exit = %q, want 7", exit)
	}
	if _, err := mainScript(&corev1.Container{Name: "bare"}, image.Config{}, dir); err == nil || !strings.Contains(err.Error(), "hint: set command") {
		t.Errorf("no command: %v", err)
	}
}
