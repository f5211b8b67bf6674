package vm

import (
	"os"
	"strings"
	"testing"
)

func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Forward
		err  string
	}{
		{in: "8080:80", want: Forward{"127.0.0.1", 8080, 80, "tcp"}},
		{in: "0.0.0.0:53:53/udp", want: Forward{"0.0.0.0", 53, 53, "udp"}},
		{in: "2222:22/tcp", want: Forward{"127.0.0.1", 2222, 22, "tcp"}},
		{in: "80", err: "two or three"},
		{in: "a:b:c:d", err: "two or three"},
		{in: "0:80", err: "host port"},
		{in: "80:70000", err: "guest port"},
		{in: "80:80/sctp", err: "tcp or udp"},
		{in: ":80:80", err: "empty host address"},
	} {
		got, err := ParseForward(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "hint:") {
				t.Errorf("ParseForward(%q) err = %v, want %q with a hint", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseForward(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"512", 512, true}, {"512M", 512, true}, {"2G", 2048, true}, {"1GiB", 1024, true},
		{"0", 0, false}, {"-5", 0, false}, {"lots", 0, false}, {"1.5K", 0, false},
	} {
		got, err := ParseMemory(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		start uint64
		alive bool
	}{
		{"1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 987654 100 200", 987654, true},
		{"1234 (we (ird) name) R 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 42 100 200", 42, true},
		{"1234 (qemu) Z 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 42 100 200", 42, false},
		{"garbage", 0, false},
	} {
		start, alive := parseStat(tc.in)
		if start != tc.start || alive != tc.alive {
			t.Errorf("parseStat(%q) = %d, %v; want %d, %v", tc.in, start, alive, tc.start, tc.alive)
		}
	}
}

func TestCrashReason(t *testing.T) {
	for _, tc := range []struct {
		name, log, want string
		crashed         bool
	}{
		{"panic", "[    1.0] Run /sbin/init as init process\n[    1.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n[ 1.3] CPU: 0\n",
			"kernel panic: not syncing: Attempted to kill init! exitcode=0x00000100", true},
		{"kvm", "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n", "KVM failed: failed to set MSR 0x10a to 0x69", true},
		{"kvm internal", "KVM internal error. Suberror: 1\nemulation failure\n", "KVM failed: KVM internal error. Suberror: 1", true},
		{"shutdown", "[ 3.1] reboot: Restarting system\n[ 3.2] reboot: machine restart\n", "the guest shut down", false},
		{"shutdown despite warning", "qemu-system-x86_64: warning: host doesn't support requested feature\n[ 3.1] reboot: Power down\n", "the guest shut down", false},
		{"signal", "[ 2.0] hello\nqemu-system-x86_64: terminating on signal 15 from pid 99 (kill)\n", "QEMU: terminating on signal 15 from pid 99 (kill)", true},
		{"killed", "[    2.000000] random: crng init done\n\x1b[6n/ # \x1b[6n\n", "the VMM process exited or was killed; last console line: / #", true},
		{"empty", "", "the VMM process exited or was killed before the guest wrote anything", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, crashed := crashReason(tc.log)
			if !strings.HasPrefix(got, tc.want) || crashed != tc.crashed {
				t.Errorf("crashReason = %q, %v; want prefix %q, %v", got, crashed, tc.want, tc.crashed)
			}
		})
	}
}

func TestConsoleReady(t *testing.T) {
	log := "[ 0.5] Run /sbin/init as init process\nhello\n"
	if !consoleReady("", log) || consoleReady("", "[ 0.1] Linux version") {
		t.Error("default marker should be the kernel starting init")
	}
	if !consoleReady("hello", log) || consoleReady("bye", log) {
		t.Error("custom marker not matched as a substring")
	}
}

func TestHaltDetection(t *testing.T) {
	dir := t.TempDir()
	v := &VM{Dir: dir}
	for _, tc := range []struct {
		log    string
		halted bool
	}{
		{"[ 9.1] systemd-shutdown[1]: Powering off.\n[ 9.2] reboot: Power down\n", true},
		{"[ 9.2] reboot: System halted\n", true},
		{"/ # \x1b[6n[    2.875661] reboot: Power off not available: System halted instead\r\n", true},
		{"[ 9.2] reboot: Restarting system\n", false},
		{"[ 9.2] reboot: Power down\n[ 9.3] later output\n", false},
		{"login: ", false},
	} {
		if err := os.WriteFile(v.ConsoleLog(), []byte(tc.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := guestHalted(v); got != tc.halted {
			t.Errorf("guestHalted(%q) = %v, want %v", tc.log, got, tc.halted)
		}
	}
}
