package guestinit

import (
	"fmt"
	"strings"
)

// SetupParams is the configuration banger applies in a guest over SSH at
// every start, before the start reports the guest ready.
type SetupParams struct {
	Hostname string   // "" leaves the hostname alone
	SSHKeys  []string // authorized_keys lines added for root
	Mounts   []Mount  // shared folders (virtio-9p)
	CopyIns  []CopyIn // read-only ext4 drives
}

// Mount is a 9p share the guest mounts.
type Mount struct {
	Tag, Dir string
	ReadOnly bool
}

// CopyIn is an ext4 drive, found by its label, mounted read-only at Dir.
type CopyIn struct {
	Label, Dir string
}

// NinePOptions are the mount options of a shared folder: 9P2000.L (the
// dialect with Linux owners, modes and xattrs), and 256 KiB messages,
// which QEMU's virtio transport accepts and which move large files several
// times faster than the 8 KiB default.
const NinePOptions = "trans=virtio,version=9p2000.L,msize=262144"

// SetupCommand returns the command line that applies p under any POSIX sh
// (busybox ash, dash, bash), as root. It is idempotent, so it runs at
// every start: it sets the hostname, adds the SSH keys that are missing,
// and mounts each shared folder and copy-in drive that is not mounted yet,
// adding an /etc/fstab line (with nofail) for each so that the guest's own
// boot mounts them from then on where its init reads fstab. Copy-in
// drives are found by their ext4 label (blkid or findfs, else by reading
// the label from each /dev/vd* superblock). It exits non-zero, with one
// "banger-setup: error: ..." line on stderr, at the first step that fails.
func SetupCommand(p SetupParams) string {
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteString("\n") }
	add("PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin")
	add(`fail() { echo "banger-setup: error: $*" >&2; exit 1; }`)
	add(`mounted() { grep -q " $1 " /proc/mounts; }`)
	add(`fstab() { grep -qF "$1" /etc/fstab 2>/dev/null || echo "$1" >>/etc/fstab || fail "cannot add a line to /etc/fstab"; }`)
	if p.Hostname != "" {
		name := shellQuote(p.Hostname)
		add("{ echo %s >/proc/sys/kernel/hostname; } 2>/dev/null || hostname %s || fail 'cannot set the hostname'", name, name)
		add("echo %s >/etc/hostname || fail 'cannot write /etc/hostname'", name)
		add(`if [ -f /etc/hosts ]; then sed -i %s /etc/hosts; fi`,
			shellQuote(`s/^127\.0\.1\.1[[:space:]].*/127.0.1.1 `+sedReplacement(p.Hostname)+`/`))
	}
	if len(p.SSHKeys) > 0 {
		add("mkdir -p /root/.ssh && chmod 700 /root/.ssh || fail 'cannot create /root/.ssh'")
		add("touch /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys || fail 'cannot write /root/.ssh/authorized_keys'")
		for _, k := range p.SSHKeys {
			q := shellQuote(k)
			add("grep -qxF %s /root/.ssh/authorized_keys || echo %s >>/root/.ssh/authorized_keys || fail 'cannot write /root/.ssh/authorized_keys'", q, q)
		}
	}
	if len(p.CopyIns) > 0 {
		// label DEV: the ext4 volume name, 16 bytes at offset 1144.
		add(`label() { dd if="$1" bs=1 skip=1144 count=16 2>/dev/null | tr -d '\000'; }`)
		add(`bylabel() { d=$(blkid -L "$1" 2>/dev/null || findfs "LABEL=$1" 2>/dev/null) && [ -n "$d" ] && { echo "$d"; return; }; for d in /dev/vd?; do [ "$(label "$d")" = "$1" ] && { echo "$d"; return; }; done; return 1; }`)
	}
	for _, m := range p.Mounts {
		dir, opts := shellQuote(m.Dir), NinePOptions
		if m.ReadOnly {
			opts += ",ro"
		}
		add("mkdir -p %s || fail %s", dir, shellQuote("cannot create the mount point "+m.Dir))
		add("mounted %s || mount -t 9p -o %s %s %s || fail %s", dir, opts, shellQuote(m.Tag), dir,
			shellQuote("cannot mount the shared folder at "+m.Dir+" (does the kernel have 9p over virtio?)"))
		add("fstab %s", shellQuote(fmt.Sprintf("%s %s 9p %s,nofail 0 0", m.Tag, m.Dir, opts)))
	}
	for _, c := range p.CopyIns {
		dir := shellQuote(c.Dir)
		add("mkdir -p %s || fail %s", dir, shellQuote("cannot create the mount point "+c.Dir))
		add("if ! mounted %s; then d=$(bylabel %s) || fail %s; mount -t ext4 -o ro \"$d\" %s || fail %s; fi", dir, shellQuote(c.Label),
			shellQuote("no drive labelled "+c.Label+" for "+c.Dir), dir, shellQuote("cannot mount the copy-in drive at "+c.Dir))
		add("fstab %s", shellQuote(fmt.Sprintf("LABEL=%s %s ext4 ro,nofail 0 0", c.Label, c.Dir)))
	}
	add("echo banger-setup: ok")
	return b.String()
}

// InitScriptMarker starts the last line InitScriptCommand prints: the
// script's exit status follows it.
const InitScriptMarker = "banger-init-script: exit "

// InitScriptCommand returns the command line that runs the script it
// reads from standard input, as root, once: it is saved to a private
// temporary file and run (by its #! line, else with sh), with its output
// copied to the console (/dev/console, so it is in the VM's console log)
// and to stdout, whose last line is InitScriptMarker and the exit status.
func InitScriptCommand() string {
	return `PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin
f=$(mktemp /tmp/banger-init.XXXXXX) || exit 111
trap 'rm -f "$f"' EXIT
cat >"$f" && chmod 700 "$f" || exit 111
{ case $(head -c 2 "$f") in '#!') "$f" ;; *) sh "$f" ;; esac; echo "` + InitScriptMarker + `$?"; } </dev/null 2>&1 | { tee /dev/console 2>/dev/null || cat; }
`
}
