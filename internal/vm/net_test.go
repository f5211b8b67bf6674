package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/netnstest"
)

// serveBanner accepts TCP connections on addr, writes banner to each and
// closes it, until the test ends. It returns the port and a counter of
// the connections accepted.
func serveBanner(t *testing.T, addr, banner string) (int, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_, _ = io.WriteString(c, banner+"\n")
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, &n
}

// guestTry runs command in VM name over SSH and returns its exit status
// and output; only a failure to run it at all fails the test.
func guestTry(t *testing.T, s *Store, name, command string) (int, string) {
	t.Helper()
	target, err := s.SSH(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := target.Connect(ctx, 30*time.Second)
	if err != nil {
		t.Fatalf("VM %s: SSH: %v", name, err)
	}
	defer c.Close()
	var out strings.Builder
	code, err := guest.Run(ctx, c, command, nil, &out, &out)
	if err != nil {
		t.Fatalf("VM %s: %q: %v", name, command, err)
	}
	return code, out.String()
}

// TestHostAccess boots --net user guests (real QEMU) in a network
// namespace of the test's own, which has TCP and UDP services on its
// 127.0.0.1 and a TCP service on an "outside" address, 198.51.100.7
// (TEST-NET-2, on the namespace's lo, so nothing leaves it). With host
// access none, the default, the guest reaches none of them, through
// 10.0.2.2 or directly (QEMU's restrict=on cuts outside networks too);
// with loopback it reaches all. SSH, a forward into the guest, works in
// both.
func TestHostAccess(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "198.51.100.7/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	loopPort, loopHits := serveBanner(t, "127.0.0.1:0", "hello from the host's loopback")
	outPort, outHits := serveBanner(t, "198.51.100.7:0", "hello from outside")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port
	var udpHits atomic.Int32
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			udpHits.Add(1)
		}
	}()
	s := newStore(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name, access string // access "" takes the default
		want         string
		reach        bool
	}{
		{"ha-default", "", HostAccessNone, false},
		{"ha-loopback", HostAccessLoopback, HostAccessLoopback, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Create(ctx, CreateOptions{Name: tc.name, Kernel: "test", Rootfs: shared.sshd, MemoryMiB: 256, HostAccess: tc.access}); err != nil {
				t.Fatal(err)
			}
			v := startRetry(t, s, tc.name)
			if v.Config.HostAccess != tc.want {
				t.Errorf("%s: host access %q, want %q", tc.name, v.Config.HostAccess, tc.want)
			}
			if restricted := strings.Contains(strings.Join(v.State.Argv, " "), "restrict=on"); restricted != !tc.reach {
				t.Errorf("%s: QEMU's restrict=on is %v in %q", tc.name, restricted, v.State.Argv)
			}
			for _, target := range []struct {
				addr   string
				banner string
				hits   *atomic.Int32
			}{
				{fmt.Sprintf("10.0.2.2 %d", loopPort), "hello from the host's loopback", loopHits},
				{fmt.Sprintf("198.51.100.7 %d", outPort), "hello from outside", outHits},
			} {
				before := target.hits.Load()
				code, out := guestTry(t, s, tc.name, "timeout 10 nc "+target.addr+" </dev/null")
				reached := code == 0 && strings.Contains(out, target.banner)
				t.Logf("%s: nc %s: exit %d, %q", tc.name, target.addr, code, out)
				if reached != tc.reach || (target.hits.Load() > before) != tc.reach {
					t.Errorf("%s: nc %s reached it: %v (exit %d, %q, %d connection(s) accepted); want %v",
						tc.name, target.addr, reached, code, out, target.hits.Load()-before, tc.reach)
				}
			}
			// UDP (QEMU's DNS relay at 10.0.2.3 is UDP too) to the host's
			// loopback, sent by busybox's tftp: counted as it arrives.
			before := udpHits.Load()
			guestTry(t, s, tc.name, fmt.Sprintf("cd /tmp; timeout 3 tftp -g -r x 10.0.2.2 %d; true", udpPort))
			time.Sleep(200 * time.Millisecond)
			if got := udpHits.Load() > before; got != tc.reach {
				t.Errorf("%s: a UDP datagram to 10.0.2.2 reached the host's loopback: %v, want %v", tc.name, got, tc.reach)
			}
			if err := s.Remove(ctx, tc.name, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}
