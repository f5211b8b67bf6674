package vm

import (
	"fmt"
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
		{in: "192.168.1.10:8080:80", want: Forward{"192.168.1.10", 8080, 80, "tcp"}},
		{in: "80", err: "two or three"},
		{in: "a:b:c:d", err: "two or three"},
		{in: "0:80", err: "host port"},
		{in: "80:70000", err: "guest port"},
		{in: "80:80/sctp", err: "tcp or udp"},
		{in: ":80:80", err: `host address "" is not an IPv4 address`},
		{in: "127.0.0.1,x:80:80", err: `host address "127.0.0.1,x" is not an IPv4 address`},
		{in: "127.0.0.1,guestfwd=tcp:10.0.2.9:80-cmd:sh:80:80", err: "two or three"},
		{in: "localhost:80:80", err: `host address "localhost" is not an IPv4 address`},
		{in: "0:80:80", err: `host address "0" is not an IPv4 address`},
		{in: "127.1:80:80", err: `host address "127.1" is not an IPv4 address`},
		{in: "010.0.0.1:80:80", err: "is not an IPv4 address"},
		{in: "[::1]:80:80", err: "IPv4 only"},
		{in: "::1:80:80", err: "two or three"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseForward(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) ||
					!strings.Contains(err.Error(), "hint: use "+ForwardForms) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line naming %q, saying %q and the accepted forms", err, tc.in, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestForwardOverlaps(t *testing.T) {
	fw := func(s string) Forward {
		f, err := ParseForward(s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:80:80", "127.0.0.1:80:8080", true},
		{"0.0.0.0:80:80", "127.0.0.1:80:81", true},
		{"127.0.0.1:80:80", "0.0.0.0:80:81", true},
		{"0.0.0.0:80:80", "0.0.0.0:80:81", true},
		{"80:80", "127.0.0.1:80:81", true},
		{"127.0.0.1:80:80", "127.0.0.2:80:80", false},
		{"0.0.0.0:80:80/tcp", "0.0.0.0:80:80/udp", false},
		{"127.0.0.1:80:80", "127.0.0.1:81:80", false},
	} {
		t.Run(tc.a+" "+tc.b, func(t *testing.T) {
			if got := fw(tc.a).overlaps(fw(tc.b)); got != tc.want {
				t.Errorf("overlaps = %v, want %v", got, tc.want)
			}
			if got := fw(tc.b).overlaps(fw(tc.a)); got != tc.want {
				t.Errorf("reversed: overlaps = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckNetForwards(t *testing.T) {
	for _, tc := range []struct {
		name string
		fwds []Forward
		err  string
	}{
		{"distinct", []Forward{{"127.0.0.1", 80, 80, "tcp"}, {"127.0.0.1", 80, 80, "udp"}, {"127.0.0.2", 80, 80, "tcp"}}, ""},
		{"same bind", []Forward{{"127.0.0.1", 8080, 80, "tcp"}, {"127.0.0.1", 8080, 81, "tcp"}}, "both bind host port 8080/tcp"},
		{"every address covers one", []Forward{{"127.0.0.1", 80, 80, "tcp"}, {"0.0.0.0", 80, 81, "tcp"}},
			"port forwards 127.0.0.1:80->80/tcp and 0.0.0.0:80->81/tcp both bind host port 80/tcp"},
		// Older versions stored host addresses unparsed.
		{"stored host name", []Forward{{"localhost", 80, 80, "tcp"}}, `host address "localhost" is not an IPv4 address`},
		{"stored option", []Forward{{"127.0.0.1,x", 80, 80, "tcp"}}, "is not an IPv4 address"},
		{"stored port", []Forward{{"127.0.0.1", 0, 80, "tcp"}}, "not a number from 1 to 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNetForwards(&Config{Forwards: tc.fwds})
			if (tc.err == "" && err != nil) || (tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err))) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
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
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMemory(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseMemory(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
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
		name   string
		log    string
		halted bool
	}{
		{"power down", "[ 9.1] systemd-shutdown[1]: Powering off.\n[ 9.2] reboot: Power down\n", true},
		{"halted", "[ 9.2] reboot: System halted\n", true},
		{"halted instead", "/ # \x1b[6n[    2.875661] reboot: Power off not available: System halted instead\r\n", true},
		{"restart", "[ 9.2] reboot: Restarting system\n", false},
		{"output after", "[ 9.2] reboot: Power down\n[ 9.3] later output\n", false},
		{"running", "login: ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(v.ConsoleLog(), []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := guestHalted(v); got != tc.halted {
				t.Errorf("guestHalted(%q) = %v, want %v", tc.log, got, tc.halted)
			}
		})
	}
}
