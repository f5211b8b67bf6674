package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testBundleKernel unpacks shared/kernels' small test bundle (a real 6.12
// vmlinux) and imports it as generic-6.12 into a fresh state directory, so
// the publish script's failure paths can be exercised without the long
// generic build.
func testBundleKernel(t *testing.T, banger string) (state string) {
	t.Helper()
	ctx := testContext(t)
	dir := t.TempDir()
	from := filepath.Join(dir, "from")
	if err := os.MkdirAll(from, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, cleanEnv(), "tar", "--zstd", "-xf", filepath.Join(sharedDir(t), "kernels", "test-6.12-x86_64.tar.zst"), "-C", from)
	state = filepath.Join(dir, "state")
	mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state), banger, "kernel", "import", kernelName,
		"--from", from, "--distro", "generic", "--arch", "x86_64", "--kernel-version", "6.12.117")
	return state
}

func TestPublishErrors(t *testing.T) {
	banger := bangerBin(t)
	state := testBundleKernel(t, banger)
	publish := filepath.Join(repoRoot(t), "scripts", "publish-kernel.sh")

	// A state whose installed kernel gained a symlink escaping the bundle:
	// banger's extractor refuses it, so the publisher must too.
	evil := t.TempDir()
	if out, err := exec.Command("cp", "-a", state, evil).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	evilState := filepath.Join(evil, "state")
	mods := filepath.Join(evilState, "kernels", kernelName, "modules")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../etc/passwd", filepath.Join(mods, "escape")); err != nil {
		t.Fatal(err)
	}

	emptyServed := t.TempDir()
	notHere := serveHTTP(t, testContext(t), emptyServed)

	tests := []struct {
		name string
		env  []string
		args []string
		want string
		git  bool // put the catalog in a git repo with an uncommitted change
	}{
		{name: "no description", args: []string{kernelName}, want: "missing --description"},
		{name: "not imported", env: []string{"BANGER_STATE_DIR=" + t.TempDir()}, want: "is not imported"},
		{name: "rejected by banger", env: []string{"BANGER_STATE_DIR=" + evilState}, want: "banger refuses the packed bundle"},
		{name: "remote not configured", env: []string{"RCLONE_REMOTE=nosuchremote"}, want: `rclone remote "nosuchremote" is not configured`},
		{name: "rclone missing", env: []string{"PATH=" + pathWithout(t, "rclone")}, want: "rclone is not installed (hint: apt-get install rclone)"},
		{name: "HEAD fails", env: []string{"BASE_URL=" + notHere}, want: "HEAD " + notHere + "/" + bundleName + ": got status 404"},
		{name: "dirty catalog", git: true, want: "has uncommitted changes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			tmp := t.TempDir()
			catalog := copyCatalog(t, tmp)
			if tc.git {
				for _, args := range [][]string{{"init", "-q"}, {"add", "catalog.json"},
					{"-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "commit", "-q", "-m", "catalog"}} {
					mustRun(t, ctx, cleanEnv(), "git", append([]string{"-C", tmp}, args...)...)
				}
				if err := os.WriteFile(catalog, append(readFile(t, catalog), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := readFile(t, catalog)
			bucket := filepath.Join(tmp, "bucket")
			env := cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+banger, "CATALOG="+catalog,
				"PUBLISH_DIR="+filepath.Join(tmp, "publish"), "RCLONE_CONFIG_E2ELOCAL_TYPE=local",
				"RCLONE_REMOTE=e2elocal", "RCLONE_BUCKET="+bucket, "BASE_URL="+notHere)
			env = append(env, tc.env...) // later entries win
			args := tc.args
			if args == nil {
				args = []string{kernelName, "--description", description}
			}
			r := runCmd(ctx, env, publish, args...)
			if r.err == nil {
				t.Fatalf("publish-kernel.sh succeeded, want failure %q\n%s", tc.want, r.stdout)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, r.stderr)
			}
			if !bytes.Equal(before, readFile(t, catalog)) {
				t.Error("the catalog was changed by a failed publish")
			}
		})
	}
}

// pathWithout builds a PATH directory that links every command on the
// current PATH except the named ones: a real environment where exactly
// those tools are not installed.
func pathWithout(t *testing.T, missing ...string) string {
	t.Helper()
	dir := t.TempDir()
	skip := map[string]bool{}
	for _, m := range missing {
		skip[m] = true
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if skip[e.Name()] {
				continue
			}
			link := filepath.Join(dir, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
