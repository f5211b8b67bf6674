package cli

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/thaloco/banger/internal/fetch"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/node"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmm"
)

// TestHints: the CLI's hint follows the library's message, also when the
// error is wrapped or one of several joined, and an error no rule knows
// is left alone.
func TestHints(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"in use", &stagedir.InUseError{Kind: "kernel", Name: "k", Users: []string{"VM a"}},
			`kernel "k" is used by VM a (hint: remove them first, or pass --force)`},
		{"backing", &stagedir.InUseError{Kind: "image", Name: "i", UsersKind: "VM(s)", Users: []string{"a"}, Backing: true},
			`image "i" is the base of the overlay disks of VM(s) a: removing or replacing it would lose their data, so even --force refuses (hint: remove them first)`},
		{"running", fmt.Errorf("removing: %w", &vm.RunningError{Name: "a"}),
			`removing: VM "a" is running (hint: stop it first with "banger vm stop a", or pass --force)`},
		{"image exists", &image.ExistsError{Name: "i"},
			`image "i" already exists (hint: pass --force to replace it, or choose another --name)`},
		{"kernel imported", &kernelstore.InstalledError{Name: "k", Imported: true},
			`kernel "k" is already installed from a local import (hint: pass --force to replace it with the catalog's, or import it under another name)`},
		{"no space", &kernelstore.NoSpaceError{Dir: "/k", Err: fmt.Errorf("pulling kernel %q: %w", "k", syscall.ENOSPC)},
			`pulling kernel "k": no space left on device (hint: free space in /k, or set BANGER_KERNELS_DIR to a directory on a larger file system)`},
		{"not in catalog", &kernelcat.NotFoundError{Name: "x", Suggestions: []string{"y"}},
			`kernel "x" is not in the catalog; did you mean y? (hint: run "banger kernel list --available")`},
		{"no home", paths.ErrNoHome,
			`cannot find a state directory: HOME is not set (hint: set BANGER_STATE_DIR or XDG_STATE_HOME)`},
		{"gone", &fetch.StatusError{URL: "u", Code: 404, Status: "404 Not Found"},
			`downloading u: 404 Not Found (hint: the catalog entry's URL is wrong or the tarball was removed; check BANGER_KERNEL_MIRROR/BANGER_CATALOG)`},
		{"server failing", &fetch.StatusError{URL: "u", Code: 503, Status: "503 Service Unavailable"},
			`downloading u: 503 Service Unavailable (hint: the server is failing; try again later)`},
		{"no qemu", fmt.Errorf("starting VM %q: %w", "a", &vmm.NotFoundError{Program: "qemu-system-x86_64", Install: "install qemu", Other: "firecracker"}),
			`starting VM "a": qemu-system-x86_64 not found on PATH: install qemu (hint: or use --vmm firecracker)`},
		{"no client CA", fmt.Errorf("running node: %w", node.ErrNoClientCA),
			`running node: serving the kubelet API needs the CA of the apiserver's kubelet client certificate (hint: pass --client-ca-file, or --listen "" to serve no kubelet API)`},
		{"no arm64 qemu", &vmm.NotFoundError{Program: "qemu-system-aarch64", Install: "install qemu"},
			`qemu-system-aarch64 not found on PATH: install qemu`},
		{"shared folders", fmt.Errorf("creating VM %q: %w", "a", vm.ErrNoSharedFolders),
			`creating VM "a": firecracker has no shared-folder device, so no --mount (hint: --copy-in HOSTDIR:GUESTDIR copies the folder into a read-only drive, or use --vmm qemu)`},
		{"kernel arch", fmt.Errorf("creating VM %q: %w", "a", &vm.ArchError{Kind: "kernel", Name: "test", Arch: "x86_64", OtherKind: "VM", OtherName: "a", OtherArch: "arm64"}),
			`creating VM "a": kernel "test" is x86_64 but the VM is arm64 (hint: pass --kernel with an arm64 kernel, see "banger kernel list --arch arm64")`},
		{"image arch", &vm.ArchError{Kind: "image", Name: "armimg", Arch: "arm64", OtherKind: "VM", OtherName: "m", OtherArch: "x86_64"},
			`image "armimg" is arm64 but the VM is x86_64 (hint: build an image for it with --platform linux/amd64, or leave out --arch)`},
		{"option", fmt.Errorf("creating VM %q: %w", "a", &option.Error{Option: "memory", Value: "32M", Problem: "is too little", Hint: "use {memory} 128M or more"}),
			`creating VM "a": --memory 32M is too little (hint: use --memory 128M or more)`},
		{"short flag", &option.Error{Option: "publish", Problem: "forwards ports only with {net} user"},
			`-p forwards ports only with --net user`},
		{"joined options", errors.Join(&option.Error{Option: "arch", Err: errors.New("unknown arch")}, &vm.NoSSHSetupError{What: "mounts", Why: "it has no network"}),
			"--arch: unknown arch\nmounts are applied over SSH, but it has no network (hint: use an image with an SSH server and --net user or tap)"},
		{"no ssh server", &vm.BootError{Reason: "the guest was not ready after 1s (waiting for its SSH server on 127.0.0.1:2222)", NoSSH: true},
			`the guest was not ready after 1s (waiting for its SSH server on 127.0.0.1:2222) (hint: if the image has no SSH server, create the VM with --ready console)`},
		{"no ssh", &vm.VMError{Name: "a", Err: vm.ErrNoSSHNetwork},
			`VM "a" has no network, so no SSH (hint: use "banger vm console a", or create a VM with --net user)`},
		{"image platform", &imagebuild.PlatformError{Ref: "r", Want: "linux/amd64", Have: []string{"linux/arm64"}},
			`image "r" is for linux/arm64, not linux/amd64 (hint: pick an image built for linux/amd64, or pass --platform linux/arm64 if that is really what you want)`},
		{"build kernel arch", &imagebuild.KernelArchError{Kernel: "k1", KernelArch: "x86_64", Image: "arm3", ImageArch: "arm64"},
			`kernel "k1" is x86_64 but image "arm3" would be arm64 (hint: pass --kernel-ref with an arm64 kernel, or --platform linux/amd64)`},
		{"kernel broken", &stagedir.BrokenError{Kind: "kernel", Name: "k", Reason: "manifest.json is missing", Replaceable: true},
			`kernel "k" is broken: manifest.json is missing (hint: run "banger kernel pull k --force" or "banger kernel rm k")`},
		{"image broken", &stagedir.BrokenError{Kind: "image", Name: "i", Reason: "rootfs.ext4 is missing", Hint: `run "banger image rm i" and create it again`},
			`image "i" is broken: rootfs.ext4 is missing (hint: run "banger image rm i" and create it again)`},
		{"joined", errors.Join(&vm.RunningError{Name: "a"}, errors.New("other")),
			"VM \"a\" is running (hint: stop it first with \"banger vm stop a\", or pass --force)\nother"},
		{"unknown", errors.New("plain"), "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withHint(tc.err)
			if got.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !errors.Is(got, tc.err) && !strings.HasPrefix(tc.name, "joined") {
				t.Errorf("the hinted error no longer wraps %v", tc.err)
			}
		})
	}
}
