package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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
		Name: "main",
		Args: []string{`echo "$GREETING from $(pwd) to $WHO"; echo "it's $1" >&2; exit 7`, "arg0", "quoted 'one'"},
		Env:  []corev1.EnvVar{{Name: "GREETING", Value: "hello; $(rm -rf /)"}},
	}
	// The image gives the entrypoint, a variable and the directory.
	img := image.Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"exit 99"}, Env: []string{"WHO=you", "GREETING=overridden"}, WorkingDir: wd}
	script, err := mainScript(&corev1.Pod{}, c, img, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s\n%s", err, out, script)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "main.log"))
	want := "hello; $(rm -rf /) from " + wd + " to you\nit's quoted 'one'\n"
	if string(log) != want {
		t.Errorf("main.log = %q, want %q", log, want)
	}
	exit, _ := os.ReadFile(filepath.Join(dir, "exit"))
	if string(exit) != "7\n" {
		t.Errorf("exit = %q, want 7", exit)
	}
	if _, err := mainScript(&corev1.Pod{}, &corev1.Container{Name: "bare"}, image.Config{WorkingDir: "/"}, dir); err == nil || !strings.Contains(err.Error(), "hint: set command") {
		t.Errorf("no command: %v", err)
	}
}

// TestContainerProcess: a container and its image's config merge as
// Kubernetes merges them.
func TestContainerProcess(t *testing.T) {
	img := image.Config{
		Entrypoint: []string{"/bin/server"}, Cmd: []string{"--port", "80"},
		Env:        []string{"PATH=/usr/bin:/bin", "MODE=image", "EMPTY=", "WITH=EQUALS=SIGN"},
		WorkingDir: "/srv",
	}
	for _, tc := range []struct {
		name string
		ctr  corev1.Container
		img  image.Config
		want process
	}{
		{"image alone", corev1.Container{}, img,
			process{Argv: []string{"/bin/server", "--port", "80"}, Env: img.Env, Dir: "/srv"}},
		{"command drops entrypoint and cmd", corev1.Container{Command: []string{"/bin/sh"}}, img,
			process{Argv: []string{"/bin/sh"}, Env: img.Env, Dir: "/srv"}},
		{"command and args", corev1.Container{Command: []string{"/bin/sh", "-c"}, Args: []string{"echo hi"}}, img,
			process{Argv: []string{"/bin/sh", "-c", "echo hi"}, Env: img.Env, Dir: "/srv"}},
		{"args replace cmd only", corev1.Container{Args: []string{"--port", "8080"}}, img,
			process{Argv: []string{"/bin/server", "--port", "8080"}, Env: img.Env, Dir: "/srv"}},
		{"cmd without entrypoint", corev1.Container{}, image.Config{Cmd: []string{"/bin/true"}},
			process{Argv: []string{"/bin/true"}}},
		{"container env overrides in place and adds", corev1.Container{Env: []corev1.EnvVar{
			{Name: "NEW", Value: "1"}, {Name: "MODE", Value: "pod"},
			{Name: "FROM", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}}, img,
			process{Argv: []string{"/bin/server", "--port", "80"}, Env: []string{"PATH=/usr/bin:/bin", "MODE=pod", "EMPTY=", "WITH=EQUALS=SIGN", "NEW=1"}, Dir: "/srv"}},
		{"container working dir wins", corev1.Container{WorkingDir: "/tmp"}, img,
			process{Argv: []string{"/bin/server", "--port", "80"}, Env: img.Env, Dir: "/tmp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerProcess(&tc.ctr, tc.img)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("containerProcess = %+v\nwant               %+v", got, tc.want)
			}
		})
	}
	t.Run("nothing to run", func(t *testing.T) {
		_, err := containerProcess(&corev1.Container{Name: "main", Image: "scratch", Args: []string{"x"}}, image.Config{Env: []string{"A=1"}})
		if _, err2 := containerProcess(&corev1.Container{Name: "main", Image: "scratch"}, image.Config{}); err2 == nil {
			t.Error("a container with no command of an image with neither entrypoint nor cmd was accepted")
		}
		if err != nil {
			t.Errorf("args alone with no entrypoint: %v, want them run as the command", err)
		}
	})
}

func TestNextBackoff(t *testing.T) {
	const base = 10 * time.Second
	for _, tc := range []struct {
		name      string
		last, ran time.Duration
		want      time.Duration
	}{
		{"first restart", 0, time.Second, base},
		{"doubles", base, time.Second, 2 * base},
		{"doubles again", 4 * base, time.Minute, 8 * base},
		{"capped", 4 * time.Minute, time.Second, maxBackoff},
		{"stays capped", maxBackoff, time.Second, maxBackoff},
		{"reset after a long run", maxBackoff, backoffReset, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextBackoff(tc.last, base, tc.ran); got != tc.want {
				t.Errorf("nextBackoff(%s, %s, ran %s) = %s, want %s", tc.last, base, tc.ran, got, tc.want)
			}
		})
	}
}

func TestRestartsAfter(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, true},
		{corev1.RestartPolicyAlways, 1, true},
		{"", 0, true},
		{corev1.RestartPolicyOnFailure, 0, false},
		{corev1.RestartPolicyOnFailure, 137, true},
		{corev1.RestartPolicyNever, 0, false},
		{corev1.RestartPolicyNever, 2, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.policy, tc.code), func(t *testing.T) {
			if got := restartsAfter(tc.policy, tc.code); got != tc.want {
				t.Errorf("restartsAfter(%q, %d) = %v", tc.policy, tc.code, got)
			}
		})
	}
}

// TestRestartState: what is saved is read back; no file is a first run.
func TestRestartState(t *testing.T) {
	dir := t.TempDir()
	if rs, err := loadRestarts(dir); err != nil || rs.Count != 0 || rs.Last != nil {
		t.Fatalf("no file: %+v, %v", rs, err)
	}
	at := time.Date(2026, 5, 4, 9, 12, 30, 0, time.UTC)
	want := restartState{Count: 3, StartedAt: at, Backoff: 40 * time.Second, Last: &lastRun{ExitCode: 2, StartedAt: at.Add(-time.Minute), FinishedAt: at.Add(-time.Second)}}
	if err := want.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadRestarts(dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("loadRestarts = %+v, %v; want %+v", got, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, restartsFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRestarts(dir); err == nil {
		t.Error("a torn file was read without an error")
	}
}
