package guest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestQuoteArgs runs the quoted words through a real shell and checks
// that each arrives as one argument, unchanged.
func TestQuoteArgs(t *testing.T) {
	for _, args := range [][]string{
		{"echo", "plain"},
		{"printf", "%s|", "two words", "it's", `back\slash`, "$HOME", "", "*", "a;b", "\"q\""},
	} {
		out, err := exec.Command("sh", "-c", "printf '[%s]' "+QuoteArgs(args[1:])).Output()
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, a := range args[1:] {
			want.WriteString("[" + a + "]")
		}
		if string(out) != want.String() {
			t.Errorf("QuoteArgs(%q) through sh gave %q, want %q", args[1:], out, want.String())
		}
	}
	if got := CommandLine([]string{"ls | wc -l"}); got != "ls | wc -l" {
		t.Errorf("a single word must pass as is, got %q", got)
	}
}

// TestHostKeyPinning: the first key is recorded, the same key is
// accepted later, another key is refused.
func TestHostKeyPinning(t *testing.T) {
	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s := &SSH{KnownHosts: filepath.Join(t.TempDir(), "known_hosts")}
	first, other := newKey(), newKey()
	if err := s.checkHostKey("", nil, first); err != nil {
		t.Fatalf("first key: %v", err)
	}
	if err := s.checkHostKey("", nil, first); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	err := s.checkHostKey("", nil, other)
	if err == nil || !strings.Contains(err.Error(), "host key changed") {
		t.Fatalf("another key: %v; want a host key change error", err)
	}
}

// dropbearLike serves SSH on 127.0.0.1 with a session semantics that
// matters here: like dropbear, it closes a session channel whose input
// ended (EOF) before an exec or shell request was answered. Started
// commands echo their input back as "got: <input>" and exit 0. It stands
// in for dropbear, which a test cannot run without touching root's own
// authorized_keys.
func dropbearLike(t *testing.T) *ssh.Client {
	t.Helper()
	return fakeSSH(t, serveSession)
}

// fakeSSH serves SSH on 127.0.0.1, each session channel by serve, and
// returns a client of it.
func fakeSSH(t *testing.T, serve func(ssh.Channel, <-chan *ssh.Request)) *ssh.Client {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			go serve(ch, creqs)
		}
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "root", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	var eof atomic.Bool
	input := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ch)
		eof.Store(true)
		input <- b
	}()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			// Give an early EOF time to arrive: a client that waits
			// for the reply sends none meanwhile.
			time.Sleep(50 * time.Millisecond)
			if eof.Load() {
				ch.Close() // what dropbear does: no process, input ended
				return
			}
			_ = req.Reply(true, nil)
			b := <-input
			_, _ = fmt.Fprintf(ch, "got: %s", b)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
			ch.Close()
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// TestRunAndShellSendInputAfterStart: a command's (or shell's) input, and
// the EOF that ends it, reach the server only once it has accepted the
// request, so servers like dropbear do not close the session first (seen
// as "running the guest command: EOF" with an empty stdin).
func TestRunAndShellSendInputAfterStart(t *testing.T) {
	for _, in := range []string{"", "hello"} {
		// (Separate buffers: stdout and stderr are copied concurrently.)
		var out, errOut bytes.Buffer
		code, err := Run(context.Background(), dropbearLike(t), "cat", strings.NewReader(in), &out, &errOut)
		if err != nil || code != 0 || out.String() != "got: "+in {
			t.Errorf("Run with input %q: code %d, err %v, output %q", in, code, err, out.String())
		}
		out.Reset()
		code, err = Shell(context.Background(), dropbearLike(t), strings.NewReader(in), &out, &errOut)
		if err != nil || code != 0 || out.String() != "got: "+in {
			t.Errorf("Shell with input %q: code %d, err %v, output %q", in, code, err, out.String())
		}
	}
}

// servePty answers a session that asks for a terminal: at exec it prints
// the terminal's type and size, then waits for a window change, prints
// the new size and exits 5.
func servePty(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var term string
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var pty struct {
				Term             string
				Cols, Rows, W, H uint32
				Modes            string
			}
			if ssh.Unmarshal(req.Payload, &pty) != nil {
				_ = req.Reply(false, nil)
				return
			}
			term = fmt.Sprintf("%s %dx%d", pty.Term, pty.Cols, pty.Rows)
			_ = req.Reply(true, nil)
		case "exec":
			_ = req.Reply(true, nil)
			_, _ = fmt.Fprintf(ch, "pty %s\n", term)
		case "window-change":
			var wc struct{ Cols, Rows, W, H uint32 }
			if ssh.Unmarshal(req.Payload, &wc) == nil {
				_, _ = fmt.Fprintf(ch, "resized %dx%d\n", wc.Cols, wc.Rows)
			}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{5}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// TestRunTerminal: the guest is asked for a terminal of the given type
// and size before the command, later sizes follow as window changes, and
// the exit status comes back.
func TestRunTerminal(t *testing.T) {
	resize := make(chan WindowSize, 1)
	resize <- WindowSize{Width: 120, Height: 40}
	var out bytes.Buffer
	code, err := RunTerminal(context.Background(), fakeSSH(t, servePty), "stty size", Terminal{Term: "vt100", Width: 100, Height: 30, Resize: resize}, nil, &out)
	if want := "pty vt100 100x30\nresized 120x40\n"; err != nil || code != 5 || out.String() != want {
		t.Errorf("RunTerminal: code %d, err %v, output %q; want 5 and %q", code, err, out.String(), want)
	}
	out.Reset()
	resize <- WindowSize{Width: 81, Height: 25}
	code, err = RunTerminal(context.Background(), fakeSSH(t, servePty), "true", Terminal{Resize: resize}, nil, &out)
	if want := "pty xterm 80x24\nresized 81x25\n"; err != nil || code != 5 || out.String() != want {
		t.Errorf("RunTerminal with defaults: code %d, err %v, output %q; want 5 and %q", code, err, out.String(), want)
	}
}
