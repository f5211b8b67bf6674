package imagebuild

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
)

// DebianBasePackages is what a Debian or Ubuntu image needs to boot as a
// banger guest and be reached: an init (systemd), udev (networkd waits for
// it), the SSH server, ip, CA certificates and a DNS resolver. Builds
// install the ones an image lacks; images/golden/Dockerfile installs the
// same list.
var DebianBasePackages = []string{
	"ca-certificates",
	"iproute2",
	"openssh-server",
	"systemd-resolved",
	"systemd-sysv",
	"udev",
}

// PackageHash names the build cache of an image: the sha256 over the base
// image digest and the sorted package list. Two builds with the same
// inputs share it.
func PackageHash(baseDigest string, packages []string) string {
	sorted := slices.Sorted(slices.Values(packages))
	h := sha256.New()
	h.Write([]byte("banger-image-cache-v1\n" + baseDigest + "\n"))
	for _, p := range sorted {
		h.Write([]byte(p + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// guestNeeds is what a banger guest needs, as files, for images that are
// not Debian-like: each entry is present if any of its paths exists.
var guestNeeds = []struct {
	what  string
	paths []string
}{
	{"an init (/sbin/init)", []string{"sbin/init", "usr/sbin/init", "lib/systemd/systemd", "usr/lib/systemd/systemd"}},
	{"an SSH server (sshd)", []string{"usr/sbin/sshd", "sbin/sshd", "usr/bin/sshd", "usr/sbin/dropbear"}},
	{"ip (iproute2)", []string{"sbin/ip", "usr/sbin/ip", "bin/ip", "usr/bin/ip"}},
	{"CA certificates", []string{"etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt", "etc/ssl/cert.pem"}},
}

// lacking lists what of guestNeeds the tree at root lacks.
func lacking(root *os.Root) []string {
	var out []string
	for _, n := range guestNeeds {
		found := false
		for _, p := range n.paths {
			if _, err := root.Lstat(p); err == nil {
				found = true
				break
			}
		}
		if !found {
			out = append(out, n.what)
		}
	}
	return out
}

// osRelease is the part of /etc/os-release banger reads.
type osRelease struct {
	ID, IDLike, PrettyName string
}

// DebianLike reports whether apt and dpkg are the package tools.
func (o osRelease) DebianLike() bool {
	for _, id := range append([]string{o.ID}, strings.Fields(o.IDLike)...) {
		if id == "debian" || id == "ubuntu" {
			return true
		}
	}
	return false
}

func (o osRelease) String() string {
	switch {
	case o.PrettyName != "":
		return o.PrettyName
	case o.ID != "":
		return o.ID
	}
	return "an unknown distribution (no /etc/os-release)"
}

// readOSRelease reads etc/os-release, else usr/lib/os-release, in root.
func readOSRelease(root *os.Root) osRelease {
	var data []byte
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err := root.ReadFile(p); err == nil {
			data = b
			break
		}
	}
	var o osRelease
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	return o
}

// installedPackages reads dpkg's status database in root.
func installedPackages(root *os.Root) map[string]bool {
	data, err := root.ReadFile("var/lib/dpkg/status")
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		var pkg string
		installed := false
		for _, line := range strings.Split(stanza, "\n") {
			if v, ok := strings.CutPrefix(line, "Package: "); ok {
				pkg = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Status: "); ok && strings.HasSuffix(strings.TrimSpace(v), " installed") {
				installed = true
			}
		}
		if pkg != "" && installed {
			out[pkg] = true
		}
	}
	return out
}

// missingPackages is the part of want that root's dpkg database lacks.
func missingPackages(root *os.Root, want []string) []string {
	have := installedPackages(root)
	var out []string
	for _, p := range want {
		if !have[p] {
			out = append(out, p)
		}
	}
	return out
}
