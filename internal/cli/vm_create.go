package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vm"
)

// vmCreateOptions are the flags that describe a new VM (vm create, vm run).
type vmCreateOptions struct {
	image, kernel, rootfs string
	arch                  string
	cpus                  int
	memoryMiB             int
	diskSize              int64
	vmm, net              string
	hostAccess            string
	jailer                bool
	forwards              []vm.Forward
	kernelArgs            string
	ready, readyMarker    string
	snapshot              string
	cold                  bool
	mounts                []vm.Mount
	copyIns               []vm.CopyIn
	initScript, hostname  string
	sshKeys               []string
	// file is vm create -f: the VM file to read instead of the flags.
	file string
	// cpusSet and memorySet say whether --cpus and --memory were given
	// (a restored VM takes the snapshot's unless they are).
	cpusSet, memorySet bool
}

// noteChanged records which defaulted flags the user really gave.
func (o *vmCreateOptions) noteChanged(f *pflag.FlagSet) {
	o.cpusSet, o.memorySet = f.Changed("cpus"), f.Changed("memory")
}

func (o *vmCreateOptions) addFlags(f *pflag.FlagSet, withImage bool) {
	if withImage {
		f.StringVar(&o.image, "image", "", "image to create the VM from (see \"banger image list\")")
	}
	f.StringVar(&o.kernel, "kernel", "", "installed kernel to boot (default: the image's kernel)")
	f.StringVar(&o.rootfs, "rootfs", "", "ext4 file to copy as the root disk instead of an image (needs --kernel)")
	f.StringVar(&o.arch, "arch", "", "guest architecture: x86_64 or arm64, aarch64 and amd64 accepted (default: the image's, else the kernel's)")
	f.IntVar(&o.cpus, "cpus", vm.DefaultCPUs, "number of vCPUs")
	o.memoryMiB = vm.DefaultMemoryMiB
	f.Var(memoryValue{&o.memoryMiB}, "memory", "memory size, e.g. 512M or 2G")
	f.Var(sizeValue{&o.diskSize}, "disk-size", "grow the VM's disk to this size, e.g. 4G (default: the image's size)")
	f.BoolVar(&o.jailer, "jailer", false, "run Firecracker through its jailer (chroot under <state>/jail, as $BANGER_JAILER_UID:$BANGER_JAILER_GID, default 64000:64000)")
	f.StringVar(&o.vmm, "vmm", "", "VMM: qemu, firecracker or auto (default $BANGER_VMM, else auto: firecracker when installed and KVM is usable)")
	f.StringVar(&o.net, "net", "", "network: user (QEMU's user-mode network, the QEMU default), tap (the Firecracker default) or none")
	f.Var(hostAccessValue{&o.hostAccess}, "host-access", hostAccessUsage)
	f.VarP(forwardsValue{&o.forwards}, "publish", "p", "forward a host port to the guest: [IPV4:]HOSTPORT:GUESTPORT[/udp], host address 127.0.0.1 unless given (user networking; repeatable)")
	f.StringVar(&o.kernelArgs, "kernel-args", "", "extra kernel command-line arguments")
	f.StringVar(&o.ready, "ready", "auto", "when the guest counts as ready: ssh (its SSH server answers), console (a line on its console) or auto (ssh if the disk has sshd or dropbear and the VM a network)")
	f.StringVar(&o.snapshot, "snapshot", "", "restore this snapshot at the first start instead of booting (see \"banger snapshot list\")")
	f.BoolVar(&o.cold, "cold", false, "boot even if the image has a matching warm snapshot (see \"banger image warm\")")
	f.StringVar(&o.readyMarker, "ready-marker", "", "console text that means ready (implies --ready console; default: the kernel starting init)")
	o.addSetupFlags(f)
}

// options turns the flags into vm.CreateOptions.
func (o *vmCreateOptions) options(name string) (vm.CreateOptions, error) {
	c := vm.CreateOptions{
		Name: name, Image: o.image, Kernel: o.kernel, Rootfs: o.rootfs, Arch: o.arch, CPUs: o.cpus, MemoryMiB: o.memoryMiB, DiskSize: o.diskSize,
		VMM: o.vmm, Jailer: o.jailer, Net: o.net, HostAccess: o.hostAccess, KernelArgs: o.kernelArgs, Ready: o.ready, ReadyMarker: o.readyMarker,
		Snapshot: o.snapshot, Cold: o.cold,
		Mounts: o.mounts, CopyIns: o.copyIns, InitScript: o.initScript, SSHKeys: o.sshKeys, Hostname: o.hostname,
	}
	if !o.cpusSet {
		c.CPUs = 0
	}
	if !o.memorySet {
		c.MemoryMiB = 0
	}
	c.Forwards = o.forwards
	return c, nil
}

func newVMCreateCommand(g *globalOptions) *cobra.Command {
	var o vmCreateOptions
	cmd := &cobra.Command{
		Use:   "create NAME (--image IMAGE | --kernel KERNEL --rootfs FILE | -f VMFILE)",
		Short: "Create a VM (without starting it)",
		Long: `Create a VM from an image, or from an installed kernel and an ext4 file.
The VM gets its own writable copy of the root filesystem (a reflink or
sparse copy) and its own directory <state>/vms/NAME/. It is not started.

With -f, a VM file describes the VM instead of flags (which -f refuses):
one VM's keys at the top level, its name under name: or given as NAME;
or a file with vms: (see "banger up --help"), NAME choosing the VM.`,
		Example: `  banger vm create web --image golden
  banger vm create web --image golden --cpus 2 --memory 1G --disk-size 8G -p 8080:80
  banger vm create tiny --kernel generic-6.12 --rootfs ./rootfs.ext4 --net none
  banger vm create pi --arch arm64 --kernel generic-6.12-arm64 --rootfs ./arm64.ext4
  banger vm create dev --image golden --mount .:/src --copy-in ./data:/data --init-script setup.sh --ssh-key ~/.ssh/id_ed25519.pub
  banger vm create -f vm.yaml
  banger vm create db -f banger.yaml`,
		Args: vmCreateArgs(&o.file),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.file != "" {
				if err := flagsBesideFile(cmd.Flags()); err != nil {
					return err
				}
				return runVMCreateFile(cmd.Context(), g, &o, args)
			}
			o.noteChanged(cmd.Flags())
			return runVMCreate(cmd.Context(), g, &o, args)
		},
	}
	o.addFlags(cmd.Flags(), true)
	addVMFileFlag(cmd.Flags(), &o.file, "", "create the VM a VM file describes (YAML; see \"banger up --help\")")
	return cmd
}

func runVMCreate(ctx context.Context, g *globalOptions, o *vmCreateOptions, args []string) error {
	copts, err := o.options(args[0])
	if err != nil {
		return err
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	v, err := s.Create(ctx, copts)
	if err != nil {
		return err
	}
	printCreated(g, v)
	return nil
}

// printCreated says that v was created and how to start it.
func printCreated(g *globalOptions, v *vm.VM) {
	if v.Config.Snapshot != "" {
		fmt.Fprintf(g.Stdout, "VM %s created from snapshot %s (%s, %s); its first start restores it: \"banger vm start %s\"\n", v.Name(), v.Config.Snapshot, v.Config.VMM, describeNet(v), v.Name())
		return
	}
	vmmDesc := v.Config.VMM
	if a := v.Config.GuestArch(); a != arch.Host() {
		vmmDesc += ", " + a
	}
	fmt.Fprintf(g.Stdout, "VM %s created (%s, %s); start it with \"banger vm start %s\"\n", v.Name(), vmmDesc, describeNet(v), v.Name())
}
