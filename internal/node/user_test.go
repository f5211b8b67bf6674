package node

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/thaloco/banger/internal/image"
)

// TestContainerUser: the security context's runAsUser and runAsGroup
// (the container's over the pod's) replace the parts of the image's user
// they set, and runAsNonRoot refuses root and names it cannot check.
func TestContainerUser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		image     string
		pod, ctr  *corev1.SecurityContext
		want, err string
	}{
		{name: "root by default"},
		{name: "image user", image: "nobody", want: "nobody"},
		{name: "image user and group", image: "app:staff", want: "app:staff"},
		{name: "runAsUser replaces the user", image: "app:staff", ctr: &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}, want: "1000:staff"},
		{name: "runAsGroup alone", ctr: &corev1.SecurityContext{RunAsGroup: ptr(int64(50))}, want: "0:50"},
		{name: "pod's context", image: "app", pod: &corev1.SecurityContext{RunAsUser: ptr(int64(7)), RunAsGroup: ptr(int64(8))}, want: "7:8"},
		{name: "container's over pod's", pod: &corev1.SecurityContext{RunAsUser: ptr(int64(7))}, ctr: &corev1.SecurityContext{RunAsUser: ptr(int64(9))}, want: "9"},
		{name: "non-root numeric", image: "1000", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true)}, want: "1000"},
		{name: "non-root by runAsUser", image: "app", pod: &corev1.SecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(1000))}, want: "1000"},
		{name: "non-root, image root", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true)}, err: "image test/app runs as root"},
		{name: "non-root, image uid 00", image: "00", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true)}, err: "image test/app runs as root"},
		{name: "numbers in plain form", image: "01000:007", want: "1000:7"},
		{name: "non-root, image uid 0", image: "0:0", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true)}, err: "image test/app runs as root"},
		{name: "non-root, image name", image: "app", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true)}, err: `non-numeric user "app"`},
		{name: "hostile user", image: "x\nBANGER_USER_SCRIPT\nreboot", err: "which is no user or group name or number"},
		{name: "hostile group", image: "app:a b", err: "which is no user or group name or number"},
		{name: "machine account", image: "host$", want: "host$"},
		{name: "non-root, runAsUser 0", image: "1000", ctr: &corev1.SecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(0))}, err: "runAsUser is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			if tc.pod != nil {
				pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: tc.pod.RunAsUser, RunAsGroup: tc.pod.RunAsGroup, RunAsNonRoot: tc.pod.RunAsNonRoot}
			}
			c := &corev1.Container{Name: "main", Image: "test/app", SecurityContext: tc.ctr}
			got, err := containerUser(pod, c, image.Config{User: tc.image})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("containerUser = %q, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("containerUser = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestUserScript runs user.sh on this host (as root, with its own
// /etc/passwd and /etc/group) with the real tools: util-linux setpriv,
// then busybox alone (whose setpriv and chroot cannot switch users, so
// su does), then neither.
func TestUserScript(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("switching users needs root; the suite runs as root")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox: %v (hint: install busybox-static)", err)
	}
	// A PATH of busybox's applets alone, as in a busybox image, and one
	// with nothing to switch users with. Both are read by the users
	// switched to.
	tools := t.TempDir()
	busyboxOnly, bare := filepath.Join(tools, "busybox"), filepath.Join(tools, "bare")
	for dir, applets := range map[string][]string{
		busyboxOnly: {"sh", "id", "true", "su", "setpriv", "chroot", "echo"},
		bare:        {"id", "true", "echo"},
	} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, applet := range applets {
			if err := os.Symlink(bb, filepath.Join(dir, applet)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, dir := range []string{tools, filepath.Dir(tools)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const report = `echo "$(id -u):$(id -g) $HOME $1"`
	host := os.Getenv("PATH")
	for _, tc := range []struct {
		name, path, user string
		sethome          bool
		want             string // output, or the error's words with exit 126
		fails            bool
	}{
		{"name, setpriv", host, "nobody", true, "65534:65534 /nonexistent it's me", false},
		{"numbers, setpriv", host, "1234:2345", false, "1234:2345 /root it's me", false},
		{"number without group", host, "1234", true, "1234:0 / it's me", false},
		{"name and group name", host, "nobody:root", false, "65534:0 /root it's me", false},
		{"name, busybox su", busyboxOnly, "nobody", true, "65534:65534 /nonexistent it's me", false},
		{"unknown user", host, "ghost", true, "user ghost is not in the image's /etc/passwd", true},
		{"unknown group", host, "nobody:ghosts", true, "group ghosts is not in the image's /etc/group", true},
		{"numbers, busybox", busyboxOnly, "1234:2345", true, "cannot run as user 1234:2345 (uid 1234, gid 2345)", true},
		{"no tool", bare, "nobody", true, "cannot run as user nobody", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := filepath.Join(t.TempDir(), "user.sh")
			if err := os.WriteFile(script, []byte(userScript(tc.user, tc.sethome)), 0o644); err != nil {
				t.Fatal(err)
			}
			// busybox's sh runs its own applets whatever PATH says: the
			// other PATHs get the host's.
			shell := "/bin/sh"
			if tc.path == busyboxOnly {
				shell = filepath.Join(busyboxOnly, "sh")
			}
			cmd := exec.Command(shell, script, "sh", "-c", report, "sh", "it's me")
			cmd.Env = []string{"PATH=" + tc.path, "HOME=/root"}
			cmd.Dir = "/"
			out, err := cmd.CombinedOutput()
			got := strings.TrimSpace(string(out))
			if tc.fails {
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 126 || !strings.Contains(got, tc.want) {
					t.Fatalf("user.sh as %s: %q, %v; want exit 126 saying %q", tc.user, got, err, tc.want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("user.sh as %s: %q, %v; want %q", tc.user, got, err, tc.want)
			}
		})
	}
}

// TestMainScriptUser: the main process runs as the pod's runAsUser, with
// that user's home, through the user.sh that kubectl exec uses too.
func TestMainScriptUser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod")
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr(int64(65534))}}}
	c := &corev1.Container{Name: "main", Command: []string{"/bin/sh", "-c", `id -u; echo "$HOME"`}}
	script, err := mainScript(pod, c, image.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s\n%s", err, out, script)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "main.log"))
	exit, _ := os.ReadFile(filepath.Join(dir, "exit"))
	if string(log) != "65534\n/nonexistent\n" || string(exit) != "0\n" {
		t.Errorf("main.log %q, exit %q; want uid 65534 and its home, exit 0", log, exit)
	}
	if _, err := os.Stat(filepath.Join(dir, userScriptName)); err != nil {
		t.Errorf("user.sh for kubectl exec: %v", err)
	}
}
