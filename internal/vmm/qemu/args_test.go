package qemu

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/vmm"
)

type localListener struct {
	net.Listener
	port int
}

func listenLocal() (*localListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &localListener{ln, ln.Addr().(*net.TCPAddr).Port}, nil
}

func TestArgs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vmlinux", "disk,1.ext4"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := vmm.Machine{
		Name: "web", Kernel: filepath.Join(dir, "vmlinux"), Rootfs: filepath.Join(dir, "disk,1.ext4"),
		CPUs: 2, MemoryMiB: 512, Dir: dir, ConsoleLog: filepath.Join(dir, "console.log"), Accel: "tcg",
		Cmdline: "quiet panic=5",
	}
	d := &Driver{Binary: "true", TSCKHz: 1234}
	for _, tc := range []struct {
		name    string
		edit    func(*vmm.Machine)
		want    []string // substrings of the joined command line
		notWant []string
		err     string
	}{
		{name: "tcg", want: []string{"accel=tcg", "-cpu max", "-smp 2", "-m 512", "tsc_early_khz=1234", "no_timer_check",
			"panic=5", "quiet", "file=" + dir + "/disk,,1.ext4,", "-device i8042", "-no-reboot",
			"memory-backend=microvm.ram", "-object memory-backend-memfd,id=microvm.ram,size=512M,share=on",
			"-drive id=rootfs,file=" + dir + "/disk,,1.ext4,format=raw,"},
			notWant: []string{"panic=-1", "-netdev"}},
		{name: "qcow2 overlay", edit: func(m *vmm.Machine) { m.RootfsFormat = "qcow2" }, want: []string{",format=qcow2,if=none"}, notWant: []string{"format=raw"}},
		{name: "kvm", edit: func(m *vmm.Machine) { m.Accel = "kvm" }, want: []string{"accel=kvm", "-cpu host"}, notWant: []string{"tsc_early_khz", "no_timer_check"}},
		{name: "user net", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", MAC: "52:54:00:00:00:01", Forwards: []vmm.Forward{
				{HostIP: "127.0.0.1", HostPort: 2222, GuestPort: 22}, {HostIP: "0.0.0.0", HostPort: 53, GuestPort: 53, Proto: "udp"}}}
		}, want: []string{"-netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:53-:53", "virtio-net-device,netdev=n0,mac=52:54:00:00:00:01"}},
		{name: "forward host address smuggling an option", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "127.0.0.1,guestfwd=tcp:10.0.2.9:80-cmd:sh", HostPort: 2222, GuestPort: 22}}}
		}, err: "is not an IPv4 address"},
		{name: "forward host name", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "localhost", HostPort: 2222, GuestPort: 22}}}
		}, err: `host address "localhost" is not an IPv4 address`},
		{name: "forward IPv6", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "::1", HostPort: 2222, GuestPort: 22}}}
		}, err: "is not an IPv4 address"},
		{name: "forward protocol", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "127.0.0.1", HostPort: 2222, GuestPort: 22, Proto: "sctp"}}}
		}, err: `protocol "sctp"`},
		{name: "forward port", edit: func(m *vmm.Machine) {
			m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "127.0.0.1", HostPort: 0, GuestPort: 22}}}
		}, err: "ports must be 1 to 65535"},
		{name: "tap", edit: func(m *vmm.Machine) { m.Net = vmm.Network{Mode: "tap", Tap: "bg-web"} },
			want: []string{"-netdev tap,id=n0,ifname=bg-web,script=no,downscript=no"}},
		{name: "initrd", edit: func(m *vmm.Machine) { m.Initrd = m.Kernel }, want: []string{"-initrd " + dir + "/vmlinux"}},
		{name: "drive and shares", edit: func(m *vmm.Machine) {
			m.Drives = []vmm.Drive{{ID: "copyin0", Path: m.Rootfs, ReadOnly: true}}
			m.Shares = []vmm.Share{{Tag: "banger0", HostDir: dir}, {Tag: "banger1", HostDir: dir, ReadOnly: true}}
		}, want: []string{"-drive id=copyin0,file=" + dir + "/disk,,1.ext4,format=raw,if=none,readonly=on -device virtio-blk-device,drive=copyin0",
			"-fsdev local,id=fs0,path=" + dir + ",security_model=mapped-xattr -device virtio-9p-device,fsdev=fs0,mount_tag=banger0",
			"-fsdev local,id=fs1,path=" + dir + ",security_model=mapped-xattr,readonly=on -device virtio-9p-device,fsdev=fs1,mount_tag=banger1"}},
		{name: "share missing", edit: func(m *vmm.Machine) { m.Shares = []vmm.Share{{Tag: "banger0", HostDir: dir + "/nope"}} }, err: "shared folder:"},
		{name: "bad accel", edit: func(m *vmm.Machine) { m.Accel = "hvf" }, err: "unknown accelerator"},
		{name: "no kernel", edit: func(m *vmm.Machine) { m.Kernel = filepath.Join(dir, "missing") }, err: "kernel:"},
		{name: "bad net", edit: func(m *vmm.Machine) { m.Net.Mode = "bridge" }, err: "unknown network mode"},
		{name: "deep dir", edit: func(m *vmm.Machine) { m.Dir = "/" + strings.Repeat("d", 110) }, err: "longer than the 107 bytes unix sockets allow"},
		{name: "x86_64 by name", edit: func(m *vmm.Machine) { m.Arch = "x86_64" }, want: []string{"-M microvm,acpi=off,accel=tcg,", "console=ttyS0 ", "-device i8042"}},
		{name: "arm64 tcg", edit: func(m *vmm.Machine) { m.Arch = "arm64" },
			want: []string{"-M virt,gic-version=max,accel=tcg,memory-backend=mach-virt.ram", "-cpu max",
				"-object memory-backend-memfd,id=mach-virt.ram,size=512M,share=on", "-append console=ttyAMA0 root=/dev/vda rw rootfstype=ext4 quiet panic=5",
				"-serial chardev:con", "-mon chardev=qmp,mode=control", "-device virtio-blk-device,drive=rootfs", "-no-reboot"},
			notWant: []string{"i8042", "tsc_early_khz", "no_timer_check", "microvm", "ttyS0", "reboot=t"}},
		{name: "arm64 kvm", edit: func(m *vmm.Machine) { m.Arch, m.Accel = "arm64", "kvm" }, want: []string{"accel=kvm", "-cpu host", "console=ttyAMA0"}},
		{name: "arm64 net", edit: func(m *vmm.Machine) {
			m.Arch, m.Net = "arm64", vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "127.0.0.1", HostPort: 2222, GuestPort: 22}}}
		}, want: []string{"-netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22", "-device virtio-net-device,netdev=n0"}},
		{name: "unknown arch", edit: func(m *vmm.Machine) { m.Arch = "riscv64" }, err: `QEMU cannot run "riscv64" guests`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			if tc.edit != nil {
				tc.edit(&m)
			}
			argv, err := d.Args(m)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(argv, " ")
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("command line lacks %q:\n%s", w, line)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(line, w) {
					t.Errorf("command line has %q:\n%s", w, line)
				}
			}
		})
	}
}

// TestDiskOrder: the rootfs is /dev/vda and extra drives follow in their
// order. On x86 (microvm) the guest finds the virtio-blk devices in the
// order given; on arm64 (virt) in the reverse order, so banger gives them
// reversed there.
func TestDiskOrder(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vmlinux", "rootfs.ext4", "a.ext4", "b.ext4"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := vmm.Machine{
		Name: "d", Kernel: filepath.Join(dir, "vmlinux"), Rootfs: filepath.Join(dir, "rootfs.ext4"),
		CPUs: 1, MemoryMiB: 256, Dir: dir, ConsoleLog: filepath.Join(dir, "console.log"), Accel: "tcg",
		Drives: []vmm.Drive{{ID: "a", Path: filepath.Join(dir, "a.ext4")}, {ID: "b", Path: filepath.Join(dir, "b.ext4"), ReadOnly: true}},
		Net:    vmm.Network{Mode: "user"},
	}
	d := &Driver{Binary: "true", TSCKHz: 1}
	for _, tc := range []struct{ arch, want string }{
		{"x86_64", "rootfs a b"},
		{"arm64", "b a rootfs"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			m := m
			m.Arch = tc.arch
			argv, err := d.Args(m)
			if err != nil {
				t.Fatal(err)
			}
			var disks, drives []string
			for i := 1; i < len(argv); i++ {
				if v, ok := strings.CutPrefix(argv[i], "virtio-blk-device,drive="); ok && argv[i-1] == "-device" {
					disks = append(disks, v)
				}
				if v, ok := strings.CutPrefix(argv[i], "id="); ok && argv[i-1] == "-drive" {
					id, _, _ := strings.Cut(v, ",")
					drives = append(drives, id)
				}
			}
			if got := strings.Join(disks, " "); got != tc.want {
				t.Errorf("%s: virtio-blk devices in the order %q, want %q", tc.arch, got, tc.want)
			}
			if got := strings.Join(drives, " "); got != "rootfs a b" {
				t.Errorf("%s: -drive options in the order %q, want them unchanged", tc.arch, got)
			}
			if !strings.Contains(strings.Join(argv, " "), "-device virtio-net-device,netdev=n0") {
				t.Errorf("%s: the network device moved or vanished: %v", tc.arch, argv)
			}
		})
	}
}
