package vmfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/vm"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3Zx3J6oUj0J7pQ0nKk9Vj7bH3b1m3m7hG6+6Jk0aA me@host"

// project makes a directory with what a VM file's host paths may name.
func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"src", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"rootfs.ext4": "", "setup.sh": "echo hi\n", "id.pub": "# mine\n" + testKey + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func parse(t *testing.T, dir, src string) *File {
	t.Helper()
	f, err := Parse("banger.yaml", dir, []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return f
}

// TestEveryKey: every key reaches its CreateOptions field, host paths
// resolved against the file's directory and $HOME.
func TestEveryKey(t *testing.T) {
	dir := project(t)
	home := project(t)
	f := parse(t, dir, `
vms:
  web:
    kernel: test
    rootfs: rootfs.ext4
    arch: aarch64
    cold: true
    cpus: 2
    memory: 1G
    disk_size: 4G
    vmm: qemu
    jailer: false
    net: user
    host_access: loopback
    publish: ["8080:80", "0.0.0.0:5353:53/udp"]
    kernel_args: quiet loglevel=3
    ready: ssh
    ready_marker: "login:"
    mounts: [./src:/src:ro]
    copy_ins: [data:/data]
    init_script: ./setup.sh
    ssh_keys: [~/id.pub]
    hostname: web1
  snap:
    snapshot: base
    image: golden
`)
	web, ok := f.Get("web")
	if !ok || len(f.VMs) != 2 || f.Single {
		t.Fatalf("VMs %v, single %v", f.Names(), f.Single)
	}
	if web.Line != 3 {
		t.Errorf("web at line %d, want 3", web.Line)
	}
	for _, k := range Keys() {
		if k == "image" || k == "snapshot" {
			continue // snap's
		}
		if _, given := web.set[k]; !given {
			t.Errorf("key %s not recorded", k)
		}
	}
	got, err := web.CreateOptions(home)
	if err != nil {
		t.Fatal(err)
	}
	want := vm.CreateOptions{
		Name: "web", Kernel: "test", Rootfs: filepath.Join(dir, "rootfs.ext4"), Arch: "arm64", Cold: true,
		CPUs: 2, MemoryMiB: 1024, DiskSize: 4 << 30, VMM: "qemu", Net: "user", HostAccess: "loopback",
		Forwards: []vm.Forward{
			{HostIP: "127.0.0.1", HostPort: 8080, GuestPort: 80, Proto: "tcp"},
			{HostIP: "0.0.0.0", HostPort: 5353, GuestPort: 53, Proto: "udp"},
		},
		KernelArgs: "quiet loglevel=3", Ready: "ssh", ReadyMarker: "login:",
		Mounts:     []vm.Mount{{HostDir: filepath.Join(dir, "src"), GuestDir: "/src", ReadOnly: true}},
		CopyIns:    []vm.CopyIn{{HostDir: filepath.Join(dir, "data"), GuestDir: "/data"}},
		InitScript: filepath.Join(dir, "setup.sh"),
		SSHKeys:    []string{testKey},
		Hostname:   "web1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CreateOptions:\n got %+v\nwant %+v", got, want)
	}
	snap, _ := f.Get("snap")
	if o, err := snap.CreateOptions(home); err != nil || o.Snapshot != "base" || o.Image != "golden" || o.Name != "snap" {
		t.Errorf("snap: %+v, %v", o, err)
	}
}

// TestEveryFieldHasAKey: no CreateOptions field the flags set is
// missing from the file (Jailer included).
func TestEveryFieldHasAKey(t *testing.T) {
	covered := map[string]string{
		"Name": "", "Image": "image", "Kernel": "kernel", "Rootfs": "rootfs", "Arch": "arch", "CPUs": "cpus",
		"MemoryMiB": "memory", "DiskSize": "disk_size", "VMM": "vmm", "Jailer": "jailer", "Net": "net",
		"Forwards": "publish", "HostAccess": "host_access", "KernelArgs": "kernel_args", "Ready": "ready",
		"ReadyMarker": "ready_marker", "Snapshot": "snapshot", "Cold": "cold", "Mounts": "mounts",
		"CopyIns": "copy_ins", "InitScript": "init_script", "SSHKeys": "ssh_keys", "Hostname": "hostname",
	}
	typ := reflect.TypeFor[vm.CreateOptions]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		key, ok := covered[name]
		if !ok {
			t.Errorf("vm.CreateOptions.%s has no VM file key (add one to fields and the README)", name)
			continue
		}
		if key != "" && !slices.Contains(Keys(), key) {
			t.Errorf("key %s (for %s) is missing", key, name)
		}
	}
	if len(Keys()) != len(covered)-1 {
		t.Errorf("%d keys, %d fields", len(Keys()), len(covered)-1)
	}
}

// TestErrors: each mistake is one line naming the file and its line.
func TestErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown key", "vms:\n  web:\n    image: golden\n    cpu: 2\n",
			`banger.yaml:4: unknown key "cpu" in VM "web" (hint: did you mean "cpus"?)`},
		{"dashed key", "vms:\n  web:\n    image: golden\n    disk-size: 4G\n",
			`banger.yaml:4: unknown key "disk-size" in VM "web" (hint: did you mean "disk_size"? keys are written with '_')`},
		{"alias key", "vms:\n  web:\n    image: golden\n    ports: [\"80:80\"]\n",
			`banger.yaml:4: unknown key "ports" in VM "web" (hint: did you mean "publish"?)`},
		{"name in vms", "vms:\n  web:\n    name: web\n    image: golden\n",
			`banger.yaml:3: unknown key "name" in VM "web" (hint: a VM's name is its key under vms:)`},
		{"far key", "vms:\n  web:\n    image: golden\n    colour: blue\n",
			`banger.yaml:4: unknown key "colour" in VM "web" (hint: a VM's keys are image, kernel, rootfs,`},
		{"int type", "vms:\n  web:\n    image: golden\n    cpus: two\n",
			`banger.yaml:4: VM "web": cpus: want a whole number, got "two"`},
		{"int as string", "vms:\n  web:\n    image: golden\n    cpus: \"2\"\n",
			`banger.yaml:4: VM "web": cpus: want a whole number, got "2"`},
		{"zero cpus", "vms:\n  web:\n    image: golden\n    cpus: 0\n",
			`banger.yaml:4: VM "web": cpus: want 1 or more, got 0`},
		{"bool type", "vms:\n  web:\n    image: golden\n    cold: yes\n",
			`banger.yaml:4: VM "web": cold: want true or false, got "yes"`},
		{"string type", "vms:\n  web:\n    image: [golden]\n",
			`banger.yaml:3: VM "web": image: want a string, got a list`},
		{"list type", "vms:\n  web:\n    image: golden\n    publish: \"8080:80\"\n",
			`banger.yaml:4: VM "web": publish: want a list, got "8080:80" (hint: write a list of one as ["8080:80"])`},
		{"list item type", "vms:\n  web:\n    image: golden\n    mounts:\n      - ./a:/a\n      - {x: 1}\n",
			`banger.yaml:6: VM "web": mounts: want a string in the list, got a mapping`},
		{"bad forward item", "vms:\n  web:\n    image: golden\n    publish:\n      - 8080:80\n      - 99999:80\n",
			`banger.yaml:6: VM "web": publish: invalid port forward "99999:80": host port "99999" is not a number from 1 to 65535`},
		{"bad memory", "vms:\n  web:\n    image: golden\n    memory: lots\n",
			`banger.yaml:4: VM "web": memory: invalid memory size "lots" (hint: use e.g. 512M or 2G)`},
		{"little memory", "vms:\n  web:\n    image: golden\n    memory: 64\n",
			`banger.yaml:4: VM "web": memory: 64M is too little: a VM needs at least 128M`},
		{"bad disk size", "vms:\n  web:\n    image: golden\n    disk_size: big\n",
			`banger.yaml:4: VM "web": disk_size: invalid size "big"`},
		{"bad arch", "vms:\n  web:\n    image: golden\n    arch: riscv64\n",
			`banger.yaml:4: VM "web": arch: unknown arch "riscv64" (known: x86_64, arm64; amd64 and aarch64 are accepted too)`},
		{"enum", "vms:\n  web:\n    image: golden\n    net: bridge\n",
			`banger.yaml:4: VM "web": net: want user, tap or none, got "bridge"`},
		{"duplicate VM", "vms:\n  web:\n    image: golden\n  db:\n    image: golden\n  web:\n    image: other\n",
			`banger.yaml:6: VM "web" is defined twice (first at line 2)`},
		{"duplicate key", "vms:\n  web:\n    image: golden\n    cpus: 1\n    cpus: 2\n",
			`banger.yaml:5: VM "web": key "cpus" given twice (first at line 4)`},
		{"bad name", "vms:\n  Web:\n    image: golden\n",
			`banger.yaml:2: invalid vm name "Web"`},
		{"no image", "vms:\n  web:\n    cpus: 2\n",
			`banger.yaml:2: VM "web" has no image (hint: add image: IMAGE, or kernel: and rootfs:, or snapshot:)`},
		{"null VM", "vms:\n  web:\n",
			`banger.yaml:2: VM "web" has no image`},
		{"rootfs without kernel", "vms:\n  web:\n    rootfs: ./r.ext4\n",
			`banger.yaml:3: VM "web": rootfs needs kernel: (hint: "banger kernel list" shows the installed kernels)`},
		{"image and rootfs", "vms:\n  web:\n    image: golden\n    kernel: k\n    rootfs: ./r.ext4\n",
			`banger.yaml:5: VM "web": rootfs: give image or rootfs, not both`},
		{"VM not a mapping", "vms:\n  web: golden\n",
			`banger.yaml:2: VM "web": want a mapping of its keys (image:, cpus:, …), got "golden"`},
		{"vms a list", "vms:\n  - web\n",
			`banger.yaml:2: vms: want a mapping of VM names to their keys, got a list`},
		{"vms empty", "vms:\n",
			`banger.yaml:1: vms: lists no VM`},
		{"top-level key", "vms:\n  web:\n    image: golden\ncpus: 2\n",
			`banger.yaml:4: unknown top-level key "cpus" (hint: indent cpus: under a VM in vms:)`},
		{"vms twice", "vms:\n  web:\n    image: golden\nvms:\n  db:\n    image: golden\n",
			`banger.yaml:4: vms: given twice (first at line 1)`},
		{"misspelt vms", "vm:\n  web:\n    image: golden\n",
			`banger.yaml:1: unknown key "vm" (hint: no key of a VM takes a mapping; list VMs under vms:)`},
		{"not a mapping", "- web\n",
			`banger.yaml:1: want a mapping with vms: (or one VM's keys), got a list`},
		{"syntax", "vms:\n  web:\n    image: golden\n    cpus: 2: 3\n",
			`banger.yaml:4: invalid YAML: mapping values are not allowed in this context`},
		{"unknown anchor", "vms:\n  web: *nope\n",
			`banger.yaml: invalid YAML: unknown anchor 'nope' referenced`},
		{"empty", "", `banger.yaml: the file is empty`},
		{"two documents", "image: golden\n---\nimage: other\n",
			`banger.yaml:2: a second YAML document: a VM file holds one`},
		{"single unknown", "name: web\nimage: golden\ncpu: 2\n",
			`banger.yaml:3: unknown key "cpu" in VM "web" (hint: did you mean "cpus"?)`},
		{"single bad name", "name: Web\nimage: golden\n",
			`banger.yaml:1: name: invalid vm name "Web"`},
		{"merge not a mapping", "vms:\n  web:\n    image: golden\n    <<: [1]\n",
			`banger.yaml:4: VM "web": <<: merges a mapping (<<: *anchor), got "1"`},
		{"merge of itself", "vms:\n  web: &w\n    image: golden\n    <<: *w\n",
			`banger.yaml:2: VM "web": more than 1000 merges (<<:) in the file, or a mapping merged into itself`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("banger.yaml", t.TempDir(), []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error\n %q\nwant it to start with\n %q (one line)", msg, tc.want)
			}
		})
	}
}

// TestHostPathErrors: what only the host can say is still at its line.
func TestHostPathErrors(t *testing.T) {
	dir := project(t)
	for _, tc := range []struct{ name, key, want string }{
		{"rootfs", "kernel: k\n    rootfs: missing.ext4", `banger.yaml:4: VM "web": rootfs: stat ` + filepath.Join(dir, "missing.ext4") + `: no such file or directory`},
		{"mount", "image: golden\n    mounts:\n      - ./src:/src\n      - ./nope:/nope", `banger.yaml:6: VM "web": mounts: "` + filepath.Join(dir, "nope") + `:/nope": host directory: no such file or directory (hint: use HOSTDIR:GUESTDIR[:ro]`},
		{"copy-in form", "image: golden\n    copy_ins: [./data:/data:ro]", `banger.yaml:4: VM "web": copy_ins: "` + filepath.Join(dir, "data") + `:/data:ro": expected HOSTDIR:GUESTDIR`},
		{"init script dir", "image: golden\n    init_script: src", `banger.yaml:4: VM "web": init_script: ` + filepath.Join(dir, "src") + ` is not a regular file`},
		{"key file", "image: golden\n    ssh_keys: [rootfs.ext4]", `banger.yaml:4: VM "web": ssh_keys: ` + filepath.Join(dir, "rootfs.ext4") + ` holds no public key (hint:`},
		{"home", "image: golden\n    ssh_keys: [~/id.pub]", `banger.yaml:4: VM "web": ssh_keys: ~/id.pub starts with ~, but $HOME is not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := parse(t, dir, "vms:\n  web:\n    "+tc.key+"\n")
			_, err := f.VMs[0].CreateOptions("")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n %v\nwant it to start with\n %s", err, tc.want)
			}
		})
	}
}

// TestRelativeToFile: relative host paths are the file's directory's,
// wherever banger runs.
func TestRelativeToFile(t *testing.T) {
	dir := project(t)
	path := filepath.Join(dir, "banger.yaml")
	if err := os.WriteFile(path, []byte("vms:\n  web:\n    kernel: k\n    rootfs: ./rootfs.ext4\n    mounts: [src:/src]\n    ssh_keys: [id.pub]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	rel, err := filepath.Rel(cwd, path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Load(rel)
	if err != nil {
		t.Fatal(err)
	}
	o, err := f.VMs[0].CreateOptions("")
	if err != nil {
		t.Fatal(err)
	}
	if o.Rootfs != filepath.Join(dir, "rootfs.ext4") || o.Mounts[0].HostDir != filepath.Join(dir, "src") || len(o.SSHKeys) != 1 {
		t.Errorf("not resolved against %s: %+v", dir, o)
	}
	if f.Path != rel {
		t.Errorf("Path %q, want %q as given", f.Path, rel)
	}
}

// TestSingle: a one-VM document, named or not.
func TestSingle(t *testing.T) {
	f := parse(t, t.TempDir(), "# my VM\nimage: golden\nname: web\ncpus: 2\n")
	if !f.Single || len(f.VMs) != 1 || f.VMs[0].Name != "web" || f.VMs[0].Line != 3 || f.VMs[0].opts.CPUs != 2 {
		t.Errorf("got %+v, %+v", f, f.VMs[0])
	}
	f = parse(t, t.TempDir(), "image: golden\n")
	if !f.Single || f.VMs[0].Name != "" {
		t.Errorf("unnamed: %+v", f.VMs[0])
	}
}

// TestMergeKeys: anchors and <<: share settings; a VM's own keys win.
func TestMergeKeys(t *testing.T) {
	f := parse(t, t.TempDir(), `
vms:
  web: &base
    image: golden
    cpus: 2
    memory: 1G
  db:
    <<: *base
    cpus: 4
`)
	db, _ := f.Get("db")
	if db.opts.Image != "golden" || db.opts.CPUs != 4 || db.opts.MemoryMiB != 1024 {
		t.Errorf("db: %+v", db.opts)
	}
}

// TestNullIsUnset: a key without a value is as if absent.
func TestNullIsUnset(t *testing.T) {
	f := parse(t, t.TempDir(), "vms:\n  web:\n    image: golden\n    cpus:\n    publish: ~\n")
	v := f.VMs[0]
	if v.opts.CPUs != 0 || v.opts.Forwards != nil {
		t.Errorf("%+v", v.opts)
	}
	if _, given := v.set["cpus"]; given {
		t.Error("cpus counted as given")
	}
}

// TestDifferences: what an existing VM has that the file no longer says.
func TestDifferences(t *testing.T) {
	dir := project(t)
	f := parse(t, dir, "vms:\n  web:\n    kernel: test\n    rootfs: rootfs.ext4\n    cpus: 2\n    memory: 512M\n    publish: [\"8080:80\"]\n    mounts: [src:/src]\n")
	v := f.VMs[0]
	same := vm.Config{
		Kernel: "test", Rootfs: filepath.Join(dir, "rootfs.ext4"), CPUs: 2, MemoryMiB: 512, Net: "user",
		Forwards: []vm.Forward{{HostIP: "127.0.0.1", HostPort: 8080, GuestPort: 80, Proto: "tcp"}},
		Mounts:   []vm.Mount{{HostDir: filepath.Join(dir, "src"), GuestDir: "/src", Tag: "banger0"}},
		DiskSize: 1 << 30, VMM: "qemu",
	}
	if d := v.Differences(same, ""); len(d) != 0 {
		t.Errorf("same config: %q", d)
	}
	other := same
	other.CPUs, other.MemoryMiB, other.Forwards, other.Mounts = 1, 256, nil, nil
	want := []string{
		"cpus 1 (the file says 2)", "memory 256M (the file says 512M)",
		"publish none (the file says 127.0.0.1:8080->80/tcp)",
		"mounts none (the file says " + filepath.Join(dir, "src") + ":/src)",
	}
	if d := v.Differences(other, ""); !reflect.DeepEqual(d, want) {
		t.Errorf("differences\n got %q\nwant %q", d, want)
	}
}

// TestREADMEExample: the README's full example parses and uses every key.
func TestREADMEExample(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## VM files\n")
	if !ok {
		t.Fatal(`README has no "## VM files" section`)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal(`the "VM files" section has no yaml example`)
	}
	f := parse(t, t.TempDir(), example)
	used := map[string]bool{}
	for _, v := range f.VMs {
		for k := range v.set {
			used[k] = true
		}
	}
	for _, k := range Keys() {
		if !used[k] {
			t.Errorf("the README's example does not show %s", k)
		}
	}
}

// FuzzParse: no input makes the parser panic, and every error is one
// line starting with the file's name.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"vms:\n  web:\n    image: golden\n", "image: x\nname: y\n", "vms:\n  a: &x {image: i}\n  b: {<<: *x}\n", "---\n", "vms: [", "<<: {}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("f.yaml", "/nowhere", data)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}

// TestCreateError: vm's refusal of an option is a mistake of the file, at
// the option's line (else the VM's), naming the options as keys; other
// errors pass as they are.
func TestCreateError(t *testing.T) {
	f, err := Parse("banger.yaml", t.TempDir(), []byte("vms:\n  web:\n    image: golden\n    cpus: 99\n    net: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := f.Get("web")
	cpus := &option.Error{Option: "cpus", Value: "99", Problem: "is out of range", Hint: "use 1 to 8"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"option", fmt.Errorf("creating VM %q: %w", "web", cpus),
			`banger.yaml:4: VM "web": cpus: 99 is out of range (hint: use 1 to 8)`},
		{"named in the problem", &option.Error{Option: "publish", Problem: "forwards ports only with {net} user"},
			`banger.yaml:5: VM "web": publish: forwards ports only with net: user`},
		{"options not in the file", &option.Error{Problem: "{kernel-args} and {ready-marker} do not apply"},
			`banger.yaml:2: VM "web": kernel_args: and ready_marker: do not apply`},
		{"cause", &option.Error{Option: "arch", Err: errors.New("unknown arch")},
			`banger.yaml:2: VM "web": arch: unknown arch`},
		{"not an option", errors.New("disk full"), "disk full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := web.CreateError(tc.err)
			if got.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var oe *option.Error
			if errors.As(tc.err, &oe) && !errors.Is(got, oe) {
				t.Errorf("%v does not wrap the option.Error", got)
			}
		})
	}
}
