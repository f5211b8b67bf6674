package guestinit

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// RestoreParams is what makes a restored clone its own machine.
type RestoreParams struct {
	Hostname string    // the VM's name, already validated ([a-z0-9][a-z0-9._-]*)
	MAC      string    // eth0's new address; empty leaves it alone
	Now      time.Time // the host's wall clock when the command is sent
	Seed     []byte    // 32 or more random bytes from the host
	// Net, if set, moves eth0 from the snapshot's address to the clone's
	// (tap networking).
	Net *NetChange
}

// NetChange is a clone's move from the address its snapshot was taken
// with to its own: CIDR prefixes (e.g. "172.16.0.6/30") and a gateway.
type NetChange struct {
	Old, New, Gateway string
}

// The reseed fallbacks for images without the reseed program. perl's
// ioctl returns "0 but true" on success and undef on failure; python's
// raises OSError.
const (
	perlReseed   = `open(F,">/dev/urandom")||exit 1;ioctl(F,0x5207,0)||exit 1`
	pythonReseed = `import fcntl,os;fcntl.ioctl(os.open("/dev/urandom",os.O_WRONLY),0x5207)`
)

// RestoreCommand returns the command line banger runs in a clone over
// SSH, as root, right after restore. Under any POSIX sh (busybox ash,
// dash, bash) it, in order: sets the clock to p.Now (set it just before
// sending the command), to the nanosecond where date accepts fractions
// (GNU) and to the second otherwise (busybox); writes the seed as hex to
// /dev/urandom; forces a CRNG reseed with the program at ReseedPath, else
// perl, else python3 (warning if none works); sets the hostname, /etc/hostname and the 127.0.1.1 line of
// /etc/hosts; sets eth0's MAC if p.MAC is set; and removes systemd's
// saved random seed. Warnings go to stderr as "banger-restore: warning:
// ..." lines. The last stdout line is the result ParseRestoreResult
// reads; the exit status is 0 when the seed, the clock and the hostname
// were set.
func RestoreCommand(p RestoreParams) string {
	name := shellQuote(p.Hostname)
	now := p.Now.UTC()
	secs := now.Round(time.Second).Unix()
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteString("; ") }
	add("PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin")
	add(`warn() { echo "banger-restore: warning: $*" >&2; }`)
	add("ok=1")
	// The clock first: p.Now ages with every step before it. busybox date
	// reports a failure to set the clock on stderr only: its exit status
	// is 0 all the same.
	add(`if e=$(date -s @%d.%09d 2>&1 >/dev/null) && [ -z "$e" ]; then c=ns; elif e=$(date -s @%d 2>&1 >/dev/null) && [ -z "$e" ]; then c=s; else c=failed; ok=0; warn "cannot set the clock: $e"; fi`,
		now.Unix(), now.Nanosecond(), secs)
	add("printf %%s %s >/dev/urandom || { ok=0; warn 'cannot write the seed to /dev/urandom'; }", hex.EncodeToString(p.Seed))
	add("if %s 2>/dev/null; then r=ioctl; elif perl -e %s 2>/dev/null; then r=perl; elif python3 -c %s 2>/dev/null; then r=python; else r=none; warn %s; fi",
		ReseedPath, shellQuote(perlReseed), shellQuote(pythonReseed),
		shellQuote("cannot reseed the kernel RNG (RNDRESEEDCRNG): clones share random numbers until its next timed reseed (hint: install "+ReseedPath+")"))
	// The shell's own echo first: every program started costs, and under
	// software emulation a fresh restore pays for translating its code.
	add("if { echo %s >/proc/sys/kernel/hostname; } 2>/dev/null || hostname %s; then h=set; else h=failed; ok=0; warn 'cannot set the hostname'; fi", name, name)
	add("echo %s >/etc/hostname || warn 'cannot write /etc/hostname'", name)
	add(`if [ -f /etc/hosts ]; then sed -i %s /etc/hosts || warn 'cannot update /etc/hosts'; fi`,
		shellQuote(`s/^127\.0\.1\.1[[:space:]].*/127.0.1.1 `+sedReplacement(p.Hostname)+`/`))
	if p.MAC == "" {
		add("m=kept")
	} else {
		add("{ echo 1 >/proc/sys/net/ipv4/conf/eth0/arp_notify; } 2>/dev/null")
		add("if ip link set dev eth0 address %s; then m=set; else m=failed; warn 'cannot set the MAC address of eth0'; fi", shellQuote(p.MAC))
	}
	switch n := p.Net; {
	case n == nil:
		add("n=kept")
	case n.Old == n.New:
		add("n=same")
	default:
		add("if ip addr add %s dev eth0 && ip route replace default via %s dev eth0; then n=set; else n=failed; ok=0; warn %s; fi",
			shellQuote(n.New), shellQuote(n.Gateway), shellQuote("cannot move eth0 to "+n.New))
		add("for f in /run/systemd/network/*.network; do [ -f \"$f\" ] && sed -i -e %s -e %s \"$f\"; done",
			shellQuote(`s/^Address=`+sedPattern(n.Old)+`$/Address=`+sedReplacement(n.New)+`/`),
			shellQuote(`s/^Gateway=.*/Gateway=`+sedReplacement(n.Gateway)+`/`))
		fmt.Fprintf(&b, "(sleep 2; ip addr del %s dev eth0) </dev/null >/dev/null 2>&1 & ", shellQuote(n.Old))
	}
	add("rm -f /var/lib/systemd/random-seed")
	add(`if [ $ok = 1 ]; then s=ok; else s=failed; fi`)
	add(`echo "%s $s reseed=$r clock=$c hostname=$h mac=$m net=$n"`, resultPrefix)
	b.WriteString("[ $ok = 1 ]")
	return b.String()
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sedPattern escapes s for the pattern part of a sed s/// command (basic
// regular expression).
func sedPattern(s string) string {
	return strings.NewReplacer(`\`, `\\`, `.`, `\.`, `/`, `\/`, `*`, `\*`, `[`, `\[`, `^`, `\^`, `$`, `\$`).Replace(s)
}

// sedReplacement escapes s for the replacement part of a sed s/// command.
func sedReplacement(s string) string {
	return strings.NewReplacer(`\`, `\\`, `&`, `\&`, `/`, `\/`, "\n", `\n`).Replace(s)
}
