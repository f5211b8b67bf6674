package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guestcopy"
	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/vm"
)

type vmCpOptions struct {
	recursive bool
	wait      time.Duration
}

// cpProgressMin is the smallest copy that gets a progress bar.
const cpProgressMin = 8 << 20

func newVMCpCommand(g *globalOptions) *cobra.Command {
	var o vmCpOptions
	cmd := &cobra.Command{
		Use:   "cp [-r] [VM:]SRC... [VM:]DST",
		Short: "Copy files and directories between the host and a running VM",
		Long: `Copy files between the host and a running VM over SFTP on banger's SSH
connection, as root in the guest. A path in the VM is written VM:PATH
(relative paths and ~/ start at root's home directory); write a host
path with a colon before any slash as ./PATH. Either every SRC is in
one VM and DST on the host, or the other way round.

As with cp: several SRCs need DST to be an existing directory; a SRC
goes into DST under its own name when DST is a directory (a directory
merging into one that exists), otherwise DST is its new name. -r copies
directories; symbolic links in them are copied as links, and a SRC that
is a link is copied as a link with -r and followed without.

Permission bits, the sticky bit and access and modification times (to
the second) are kept; owners are not (files belong to root in the guest
and to you on the host), nor are setuid and setgid bits. Holes in sparse
files stay holes. Each file is written under a temporary name in a
hidden .banger-cp-* directory beside its destination and renamed into
place once complete, so an error or Ctrl-C never leaves a half-written
file under its final name. The guest needs an SFTP server (Debian's
openssh-sftp-server; dropbear runs /usr/lib/sftp-server).`,
		Example: `  banger vm cp ./app.conf web:/etc/app/
  banger vm cp -r web:/var/log/app ./logs
  banger vm cp a.txt b.txt web:
  banger vm cp web:disk.img ./disk.img`,
		Args: func(c *cobra.Command, args []string) error {
			if err := minArgs(2, "a SRC and a DST, one of them VM:PATH")(c, args); err != nil {
				return err
			}
			_, err := cpSides(c.CommandPath(), args)
			return err
		},
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMCp(cmd.Context(), g, &o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.recursive, "recursive", "r", false, "copy directories and everything in them")
	f.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the guest's SSH server to answer")
	return cmd
}

// cpArg is one SRC or DST: a path in VM, or on the host when VM is "".
type cpArg struct{ vm, path string }

// parseCpArg splits VM:PATH; a colon after a slash (or first) is part of
// a host path. A guest path starting with ~/ is relative to the home
// directory, where SFTP starts.
func parseCpArg(s string) cpArg {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.Contains(s[:i], "/") {
		return cpArg{path: s}
	}
	p := s[i+1:]
	if p == "~" {
		p = ""
	} else if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = rest
	}
	return cpArg{vm: s[:i], path: p}
}

// cpPlan is a checked command line: which VM, and which way.
type cpPlan struct {
	vm     string
	srcs   []string
	dst    string
	upload bool // host to guest
}

// cpSides checks that exactly one side is in a VM (and one VM only).
func cpSides(cmdPath string, args []string) (cpPlan, error) {
	usage := func(format string, a ...any) error {
		return &usageError{fmt.Errorf("%s: %s (see \"%s --help\")", cmdPath, fmt.Sprintf(format, a...), cmdPath)}
	}
	d := parseCpArg(args[len(args)-1])
	var p cpPlan
	var vms []string
	hostSrc := false
	for _, a := range args[:len(args)-1] {
		s := parseCpArg(a)
		switch {
		case s.vm == "":
			hostSrc = true
		case !slices.Contains(vms, s.vm):
			vms = append(vms, s.vm)
		}
		p.srcs = append(p.srcs, s.path)
	}
	switch {
	case len(vms) > 1:
		return p, usage("the sources are in several VMs (%s); copy from one VM at a time", strings.Join(vms, ", "))
	case len(vms) == 1 && hostSrc:
		return p, usage("the sources mix host paths and paths in VM %s; copy one way at a time", vms[0])
	case len(vms) == 1 && d.vm != "":
		return p, usage("both sides are in VMs (%s and %s); copy through the host", vms[0], d.vm)
	case len(vms) == 0 && d.vm == "":
		return p, usage("neither side is in a VM; write the guest's side as VM:PATH (e.g. web:/etc/hostname)")
	case d.vm != "":
		p.vm, p.upload = d.vm, true
	default:
		p.vm = vms[0]
	}
	p.dst = d.path
	return p, nil
}

func runVMCp(ctx context.Context, g *globalOptions, o *vmCpOptions, args []string) error {
	if len(args) < 2 {
		return &usageError{errors.New("banger vm cp: expected a SRC and a DST")}
	}
	p, err := cpSides("banger vm cp", args)
	if err != nil {
		return err
	}
	// A host directory without -r is refused before the VM is reached.
	if p.upload && !o.recursive {
		for _, src := range p.srcs {
			if fi, err := os.Stat(src); err == nil && fi.IsDir() {
				return cpError(p.vm, &guestcopy.Error{Op: "copying", Path: src, Err: guestcopy.ErrIsDir})
			}
		}
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	target, err := s.SSH(p.vm)
	if err != nil {
		return err
	}
	v, err := s.Get(p.vm)
	if err != nil {
		return err
	}
	// A VM created without an SSH server on its disk: fail fast, naming
	// that, rather than wait for a server that will never answer.
	noSSH := v.Config.Ready != vm.ReadySSH && v.Config.ReadyMarker == "" && v.Config.Snapshot == ""
	wait := o.wait
	if noSSH {
		wait = min(wait, 3*time.Second)
	}
	conn, err := target.Connect(ctx, wait)
	if err != nil {
		if noSSH && ctx.Err() == nil {
			return fmt.Errorf("the root filesystem of VM %q has no SSH server (no sshd or dropbear), so banger cannot copy files to or from it (hint: use an image with openssh-server, such as one made by \"banger image build\")", p.vm)
		}
		return err
	}
	defer func() { _ = conn.Close() }()
	gc, err := guestcopy.New(ctx, conn)
	if err != nil {
		if errors.Is(err, guestcopy.ErrNoSFTP) {
			return fmt.Errorf("VM %q: %w (hint: install an SFTP server in the image: Debian's openssh-sftp-server, which openssh-server depends on; dropbear runs %s)", p.vm, err, "/usr/lib/sftp-server")
		}
		return err
	}
	defer func() { _ = gc.Close() }()

	opts := guestcopy.Options{Recursive: o.recursive}
	var bar *progress.Bar
	if progress.IsTerminal(g.Stderr) {
		label := "copying to " + p.vm
		if !p.upload {
			label = "copying from " + p.vm
		}
		opts.Progress = func(total int64) guestcopy.Progress {
			if total < cpProgressMin {
				return nil
			}
			bar = progress.New(g.Stderr, label, total)
			return bar
		}
	}
	if p.upload {
		err = gc.Upload(ctx, p.srcs, p.dst, opts)
	} else {
		err = gc.Download(ctx, p.srcs, p.dst, opts)
	}
	bar.Finish(err)
	return cpError(p.vm, err)
}

// cpError names guest paths as VM:PATH and adds what to do about each
// failure; several failures stay joined.
func cpError(name string, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs := joined.Unwrap()
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = cpError(name, e)
		}
		return errors.Join(out...)
	}
	var ce *guestcopy.Error
	if !errors.As(err, &ce) {
		return err
	}
	shown := ce.Path
	if ce.Guest {
		shown = name + ":" + ce.Path
	}
	return fmt.Errorf("%s %s: %w%s", ce.Op, shown, ce.Err, cpHint(name, ce))
}

func cpHint(name string, ce *guestcopy.Error) string {
	where, dir := "on the host", path.Dir(ce.Path)
	if ce.Guest {
		where = "in VM " + name
	}
	switch {
	case errors.Is(ce.Err, guestcopy.ErrNotExist) && ce.Guest:
		return fmt.Sprintf(" (hint: \"banger vm ssh %s -- ls -la %s\" shows what is there)", name, guest.QuoteArgs([]string{dir}))
	case errors.Is(ce.Err, guestcopy.ErrPermission) && ce.Guest:
		return " (hint: banger copies as root in the guest, so the guest's kernel refused even root: an immutable file or directory (chattr +i), or a file in /proc or /sys)"
	case errors.Is(ce.Err, guestcopy.ErrPermission):
		return fmt.Sprintf(" (hint: check the permissions of %s and its directory)", ce.Path)
	case errors.Is(ce.Err, guestcopy.ErrReadOnly):
		return fmt.Sprintf(" (hint: that filesystem is mounted read-only %s; copy to a writable directory)", where)
	case errors.Is(ce.Err, guestcopy.ErrNoSpace) && ce.Guest:
		return fmt.Sprintf(" (hint: free space in the guest (\"banger vm ssh %s -- df -h %s\" shows it), or give the VM a bigger disk with \"banger vm create --disk-size\")", name, guest.QuoteArgs([]string{dir}))
	case errors.Is(ce.Err, guestcopy.ErrNoSpace):
		return fmt.Sprintf(" (hint: free space on the host's filesystem holding %s)", dir)
	case errors.Is(ce.Err, guestcopy.ErrIsDir):
		return " (hint: add -r to copy directories)"
	case errors.Is(ce.Err, guestcopy.ErrNotDir):
		return " (hint: with several sources, or a DST ending in \"/\", DST must be an existing directory)"
	case errors.Is(ce.Err, guestcopy.ErrOverwriteDir), errors.Is(ce.Err, guestcopy.ErrOverwriteNonDir):
		return fmt.Sprintf(" (hint: remove it %s first, or choose another DST)", where)
	case errors.Is(ce.Err, guestcopy.ErrConnection):
		return fmt.Sprintf(" (hint: did VM %s stop? \"banger vm list\" shows it)", name)
	}
	return ""
}
