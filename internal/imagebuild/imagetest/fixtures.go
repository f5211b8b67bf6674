package imagetest

import (
	"archive/tar"
	"path"
	"sort"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RichLayers are the layers of Rich: a gzip base with owners, modes,
// setuid, symlinks, a hardlink, device nodes and an xattr, then a zstd
// layer with a whiteout, an opaque directory, a replaced file and a
// directory replaced by a file.
func RichLayers() []v1.Layer {
	base := Layer(
		Dir("etc"), Dir("usr"), Dir("usr/bin"), Dir("bin"), Dir("var"), Dir("var/lib"), Dir("var/lib/old"),
		File("var/lib/old/x", "old\n"),
		File("etc/os-release", "ID=testos\nPRETTY_NAME=\"Test OS 1\"\n"),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"),
		File("etc/deleted", "gone\n"),
		WithMode(File("usr/bin/su", "setuid binary\n"), 0o4755),
		WithMode(File("usr/bin/wall", "setgid binary\n"), 0o2755),
		Entry{Name: "usr/bin/tool", Body: "tool v1\n", Mode: 0o755, Xattrs: map[string]string{"user.banger": "yes"}},
		Hardlink("usr/bin/tool-link", "usr/bin/tool"),
		Symlink("bin/sh", "../usr/bin/tool"),
		Symlink("etc/alternatives-abs", "/usr/bin/tool"),
		Dir("dev"),
		Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3},
		Entry{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600},
		Dir("opaque"), File("opaque/a", "a\n"), Dir("opaque/sub"), File("opaque/sub/b", "b\n"),
		Owned(WithMode(Dir("home"), 0o755), 0, 0),
		Owned(WithMode(Dir("home/user"), 0o700), 1000, 1000),
		WithMode(Dir("tmp"), 0o1777),
	)
	upper := LayerFrom(Tar(
		Whiteout("etc", "deleted"),
		Opaque("opaque"),
		File("opaque/new", "new\n"),
		WithMode(File("usr/bin/tool", "tool v2\n"), 0o755),
		File("var/lib/old", "now a file\n"),
		Owned(WithMode(File("home/user/notes", "private\n"), 0o600), 1000, 1000),
		// Implicit parent directory (no entry for usr/share).
		File("usr/share/doc/readme", "hi\n"),
	), compression.ZStd)
	return []v1.Layer{base, upper}
}

// Rich is an image exercising everything the layer applier must keep.
func Rich() v1.Image { return Image("linux/amd64", RichLayers()...) }

// Marked is a one-layer image for platform holding /platform with the
// platform's name, to tell variants of an index apart.
func Marked(platform string) v1.Image {
	return Image(platform, Layer(Dir("etc"), File("platform", platform+"\n"), File("etc/os-release", "ID=testos\n")))
}

// hostile layers, each trying to write outside the image; outside is a
// directory outside the build that must stay untouched.
var hostile = map[string]func(outside string) []Entry{
	"traversal": func(string) []Entry { return []Entry{File("../../escaped", "x")} },
	"absolute-traversal": func(string) []Entry {
		return []Entry{File("/../../../escaped", "x")}
	},
	"symlink-absolute": func(o string) []Entry {
		return []Entry{Symlink("evil", o), File("evil/pwned", "x")}
	},
	"symlink-relative": func(o string) []Entry {
		return []Entry{Symlink("evil", "../../../../../../../../.."+o), File("evil/pwned", "x")}
	},
	"symlink-chain": func(o string) []Entry {
		return []Entry{Dir("a"), Symlink("a/up", "../.."), Symlink("b", "a/up/.."+o), File("b/pwned", "x")}
	},
	"hardlink-traversal": func(string) []Entry {
		return []Entry{Hardlink("stolen", "../../../../../../etc/passwd")}
	},
	"hardlink-through-symlink": func(o string) []Entry {
		return []Entry{Symlink("d", o), Hardlink("stolen", "d/secret")}
	},
	"whiteout-through-symlink": func(o string) []Entry {
		return []Entry{Symlink("w", o), Whiteout("w", "secret")}
	},
	"opaque-through-symlink": func(o string) []Entry {
		return []Entry{Symlink("w", o), Opaque("w")}
	},
}

// HostileKinds names the hostile layers Hostile can build.
func HostileKinds() []string {
	var out []string
	for k := range hostile {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Hostile is an image whose second layer is of the given kind, aimed at
// the directory outside (absolute path).
func Hostile(kind, outside string) v1.Image {
	f, ok := hostile[kind]
	if !ok {
		panic("imagetest: unknown hostile kind " + kind)
	}
	base := Layer(Dir("etc"), File("etc/os-release", "ID=testos\n"))
	return Image("linux/amd64", base, Layer(f(path.Clean(outside))...))
}
