package cli

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/fetch"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/netsetup"
	"github.com/thaloco/banger/internal/node"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
)

// hints are the words banger adds to library errors that a flag, a
// command or an environment variable fixes: the libraries say what went
// wrong, the command line says what to type. Each rule returns what
// follows the error's message, or "" when err is not its kind; the first
// that matches is used.
var hints = []func(err error) string{
	// Removing and replacing what is in use or already there.
	is(func(e *stagedir.InUseError) string {
		if e.Backing {
			return ", so even --force refuses" + hint("remove them first")
		}
		return hint("remove them first, or pass --force")
	}),
	is(func(e *vm.RunningError) string {
		return hint(fmt.Sprintf("stop it first with \"banger vm stop %s\", or pass --force", e.Name))
	}),
	is(func(e *stagedir.BrokenError) string {
		if e.Kind == "kernel" && e.Replaceable {
			return hint(fmt.Sprintf("run \"banger kernel pull %s --force\" or \"banger kernel rm %s\"", e.Name, e.Name))
		}
		return ""
	}),
	is(func(e *kernelstore.VerifyError) string {
		return hint(fmt.Sprintf("run \"banger kernel pull %s --force\", or \"banger kernel rm %s\" and install it again", e.Kernel, e.Kernel))
	}),
	is(func(e *vm.BrokenError) string {
		return hint(fmt.Sprintf("remove it with \"banger vm rm --force %s\"", e.Name))
	}),
	is(func(*image.ExistsError) string { return hint("pass --force to replace it, or choose another --name") }),
	is(func(e *kernelstore.InstalledError) string {
		switch {
		case e.Imported:
			return hint("pass --force to replace it with the catalog's, or import it under another name")
		case e.PullArch != "":
			return hint(fmt.Sprintf("pass --force to replace it, or --as %s-%s to keep both", e.Entry, e.PullArch))
		case e.InstalledEntry != "":
			return hint("pass --force to replace it, or --as another name")
		}
		return hint("pass --force to replace it, or choose another name")
	}),

	// What a command needs to be told.
	sentinel(image.ErrNoKernel, hint(`pass --kernel-ref NAME, see "banger kernel list"`)),
	sentinel(imagebuild.ErrNoImageRef, hint("pass --from-image REF")),
	is(func(e *imagebuild.PlatformError) string {
		if e.Index {
			return hint(fmt.Sprintf("pick an image built for %s, or pass --platform", e.Want))
		}
		return hint(fmt.Sprintf("pick an image built for %s, or pass --platform %s if that is really what you want", e.Want, e.Have[0]))
	}),
	is(func(e *imagebuild.KernelArchError) string {
		return hint(fmt.Sprintf("pass --kernel-ref with an %s kernel, or --platform linux/%s", e.ImageArch, arch.GOARCH(e.KernelArch)))
	}),
	is(func(*kernelstore.NoVmlinuxError) string {
		return hint("--from must name the directory that holds vmlinux")
	}),
	is(func(*kernelstore.VersionError) string { return hint("pass --kernel-version") }),
	is(func(e *kernelstore.ImportArchError) string {
		var me *arch.MismatchError
		if errors.As(e.Err, &me) {
			if a, err := arch.Canonical(me.Got); err == nil {
				return hint(fmt.Sprintf("pass --arch %s if it is the kernel you meant", a))
			}
		}
		return ""
	}),
	is(func(*kernelcat.NotFoundError) string { return hint(`run "banger kernel list --available"`) }),
	is(func(*kernelcat.NotPublishedError) string { return hint("pass --arch") }),
	is(func(e *vm.ArchError) string {
		switch {
		case e.Kind == "image" && e.OtherKind == "VM":
			return hint(fmt.Sprintf("build an image for it with --platform linux/%s, or leave out --arch", arch.GOARCH(e.OtherArch)))
		case e.Kind == "image":
			return kernelOfArch(e.Arch)
		}
		return kernelOfArch(e.OtherArch)
	}),
	is(func(e *vm.ForeignArchError) string {
		return hint(fmt.Sprintf("use --vmm qemu, which emulates %s guests", e.Arch))
	}),
	is(func(*vm.SSHServerSearchError) string { return hint("install e2fsprogs, or pass --ready") }),
	is(func(e *vm.BootError) string {
		if e.NoSSH {
			return hint("if the image has no SSH server, create the VM with --ready console")
		}
		return ""
	}),
	is(func(*vm.NoSSHSetupError) string { return hint("use an image with an SSH server and --net user or tap") }),
	is(func(e *vm.VMError) string {
		switch {
		case errors.Is(e.Err, vm.ErrNoSSHNetwork):
			return hint(fmt.Sprintf("use \"banger vm console %s\", or create a VM with --net user", e.Name))
		case errors.Is(e.Err, vm.ErrNoTapLease):
			return hint("start it once with --net tap")
		case errors.Is(e.Err, vm.ErrSnapshotDevices):
			return hint("snapshot a VM made without --mount and --copy-in")
		}
		return ""
	}),
	sentinel(node.ErrNoClientCA, hint(`pass --client-ca-file, or --listen "" to serve no kubelet API`)),
	sentinel(firecracker.ErrNeedsKVM, hint("use --vmm qemu for software emulation")),
	sentinel(firecracker.ErrNoSharedFolders, hint("copy the folder in with --copy-in, or use --vmm qemu for --mount")),
	sentinel(firecracker.ErrRawDisksOnly, hint("use --vmm qemu")),
	sentinel(firecracker.ErrNoUserNet, hint("use --net tap, or --vmm qemu for --net user")),
	sentinel(firecracker.ErrJailedSnapshot, hint("create the VM without --jailer")),
	is(func(e *vmm.NotFoundError) string {
		if e.Other == "" {
			return ""
		}
		return hint("or use --vmm " + e.Other)
	}),
	is(func(*netsetup.NoCapError) string { return hint("run banger with sudo, or use --net user with QEMU") }),
	sentinel(vm.ErrNoSharedFolders, ", so no --mount"+
		hint("--copy-in HOSTDIR:GUESTDIR copies the folder into a read-only drive, or use --vmm qemu")),

	// Where banger keeps and finds things.
	sentinel(paths.ErrNoHome, hint("set BANGER_STATE_DIR or XDG_STATE_HOME")),
	is(func(*paths.NotDirError) string { return hint("move it away, or set BANGER_STATE_DIR") }),
	is(func(*vmm.SocketPathError) string {
		return hint("use a shorter VM name, or set BANGER_STATE_DIR to a shorter directory")
	}),
	is(func(e *kernelstore.NoSpaceError) string {
		return hint(fmt.Sprintf("free space in %s, or set BANGER_KERNELS_DIR to a directory on a larger file system", e.Dir))
	}),
	is(func(*kernelcat.FileError) string { return hint("point BANGER_CATALOG at a catalog.json or unset it") }),
	is(func(e *fetch.StatusError) string {
		switch {
		case e.Gone():
			return hint("the catalog entry's URL is wrong or the tarball was removed; check BANGER_KERNEL_MIRROR/BANGER_CATALOG")
		case e.Refused():
			return hint("the server refused access; check the URL and BANGER_KERNEL_MIRROR/BANGER_CATALOG")
		}
		return ""
	}),
}

func hint(s string) string { return " (hint: " + s + ")" }

func kernelOfArch(a string) string {
	return hint(fmt.Sprintf("pass --kernel with an %s kernel, see \"banger kernel list --arch %s\"", a, a))
}

// is makes a rule for the error type E.
func is[E error](words func(E) string) func(error) string {
	return func(err error) string {
		var e E
		if errors.As(err, &e) {
			return words(e)
		}
		return ""
	}
}

// sentinel makes a rule for errors that are target.
func sentinel(target error, words string) func(error) string {
	return func(err error) string {
		if errors.Is(err, target) {
			return words
		}
		return ""
	}
}

// joined is the type of errors.Join's errors, whose parts are hinted one
// by one (a command that works on several names joins their failures).
var joined = reflect.TypeOf(errors.Join(errors.New("")))

// withHint returns err with the words of the first hint rule it matches
// appended to its message, or err itself.
func withHint(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && reflect.TypeOf(err) == joined {
		parts := j.Unwrap()
		out := make([]error, len(parts))
		for i, p := range parts {
			out[i] = withHint(p)
		}
		return errors.Join(out...)
	}
	err = option.Spell(err, optionFlag)
	for _, rule := range hints {
		if words := rule(err); words != "" {
			return &hinted{err: err, words: words}
		}
	}
	return err
}

// hinted is an error with a hint after its message.
type hinted struct {
	err   error
	words string
}

func (e *hinted) Error() string { return e.err.Error() + e.words }
func (e *hinted) Unwrap() error { return e.err }
