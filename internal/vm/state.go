package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// Status is where a VM is in its life.
type Status string

// Statuses. Starting and Stopping are seen only while a banger command is
// working on the VM.
const (
	StatusCreated  Status = "created"
	StatusStarting Status = "starting"
	StatusRunning  Status = "running"
	StatusStopping Status = "stopping"
	StatusStopped  Status = "stopped"
	StatusCrashed  Status = "crashed"
)

// active reports whether a VMM process is supposed to exist.
func (s Status) active() bool {
	return s == StatusStarting || s == StatusRunning || s == StatusStopping
}

// State is a VM's runtime record. It changes with every start and stop.
type State struct {
	Status Status `json:"status"`
	// Reason explains a crash, or how the VM last stopped.
	Reason string `json:"reason,omitempty"`

	// The VMM process: its pid and its start time (clock ticks since boot,
	// /proc/PID/stat field 22), which together survive pid reuse.
	PID           int      `json:"pid,omitempty"`
	PIDStart      uint64   `json:"pid_start,omitempty"`
	APISocket     string   `json:"api_socket,omitempty"`
	ConsoleSocket string   `json:"console_socket,omitempty"`
	Accel         string   `json:"accel,omitempty"`
	Argv          []string `json:"argv,omitempty"`

	// Network of the current (or last) boot.
	SSHPort   int    `json:"ssh_port,omitempty"`   // user networking: 127.0.0.1 port forwarded to guest port 22
	Tap       string `json:"tap,omitempty"`        // tap networking
	GuestAddr string `json:"guest_addr,omitempty"` // tap networking
	HostAddr  string `json:"host_addr,omitempty"`  // tap networking

	// ConsoleOffset is the console log's size when this boot began: the
	// log before it belongs to earlier boots.
	ConsoleOffset int64     `json:"console_offset,omitempty"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	StoppedAt     time.Time `json:"stopped_at,omitzero"`
	Boot          Timings   `json:"boot,omitzero"`
	// RestorePending is set while the VM's next start is to restore
	// Config.Snapshot; a successful restore clears it, and later starts
	// boot the disk as it is then.
	RestorePending bool `json:"restore_pending,omitempty"`
	// RestoreTried is set once a restore has let the guest run: if that
	// restore did not finish, the guest may have written to its disk, so
	// the next one copies the snapshot's disk again (its memory must meet
	// the disk as it was).
	RestoreTried bool `json:"restore_tried,omitempty"`
	// Path is how the last start brought the guest up: PathBoot or
	// PathRestore.
	Path string `json:"path,omitempty"`
	// Identity is what the clone identity step reported after a restore.
	Identity string `json:"identity,omitempty"`
	// InitScriptDone is set once the VM's init script succeeded.
	InitScriptDone bool `json:"init_script_done,omitempty"`
}

// Start paths.
const (
	PathBoot    = "boot"
	PathRestore = "restore"
)

// Timings are the phases of the last boot, from spawning the VMM: the
// VMM answering on its control socket, the guest kernel's first console
// output, the kernel starting init, and the guest being ready. Zero means
// not reached (or not seen).
type Timings struct {
	VMM    time.Duration `json:"vmm_ns,omitempty"`
	Kernel time.Duration `json:"kernel_ns,omitempty"`
	Init   time.Duration `json:"init_ns,omitempty"`
	Ready  time.Duration `json:"ready_ns,omitempty"`
}

// Files in a VM's directory.
const (
	configFile  = "config.json"
	stateFile   = "state.json"
	diskFile    = "disk.ext4"  // a raw disk
	overlayFile = "disk.qcow2" // a qcow2 overlay of an image's rootfs
	// growMount is where a qcow2 disk being grown is exported as a raw
	// file while the VM is created.
	growMount   = "grow.raw"
	consoleFile = "console.log"
	knownHosts  = "known_hosts"
)

// VM is one VM as found on disk.
type VM struct {
	Config Config
	State  State
	Dir    string
}

// Name is the VM's name.
func (v *VM) Name() string { return v.Config.Name }

// DiskPath is the VM's writable root disk.
func (v *VM) DiskPath() string {
	if v.Config.Disk.Format == DiskQcow2 {
		return filepath.Join(v.Dir, overlayFile)
	}
	return filepath.Join(v.Dir, diskFile)
}

// ConsoleLog is the file the serial console is logged to.
func (v *VM) ConsoleLog() string { return filepath.Join(v.Dir, consoleFile) }

// KnownHosts is where banger records the guest's SSH host key the first
// time it connects.
func (v *VM) KnownHosts() string { return filepath.Join(v.Dir, knownHosts) }

// writeJSON writes v to path atomically: temp file, fsync, rename, fsync
// of the directory.
func writeJSON(path string, v any) error { return writeJSONFile(path, v, true) }

// writeJSONFile is writeJSON; without durable it skips the fsyncs and
// keeps only the atomic rename (readers never see a partial file), for
// records that are rewritten often and mean nothing after a host reboot.
func writeJSONFile(path string, v any, durable bool) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !durable {
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return stagedir.SyncDir(dir)
}

// saveState records v's state. The runtime state (pid, sockets, status)
// describes processes that do not survive a host reboot, so it is written
// atomically but not synced: reconcile repairs it from the real processes.
func (v *VM) saveState() error {
	if err := writeJSONFile(filepath.Join(v.Dir, stateFile), v.State, false); err != nil {
		return fmt.Errorf("saving state of VM %q: %w", v.Name(), err)
	}
	return nil
}

// load reads the VM in dir.
func load(dir string) (*VM, error) {
	v := &VM{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", configFile, err)
	}
	if err := json.Unmarshal(data, &v.Config); err != nil {
		return nil, fmt.Errorf("unreadable %s: %w", configFile, err)
	}
	if v.Config.Net == NetUser && v.Config.HostAccess == "" {
		v.Config.HostAccess = HostAccessLoopback // made before the choice existed
	}
	data, err = os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stateFile, err)
	}
	if err := json.Unmarshal(data, &v.State); err != nil {
		return nil, fmt.Errorf("unreadable %s: %w", stateFile, err)
	}
	return v, nil
}

// Process names the VMM process st records.
func (st State) Process() vmmproc.ID { return vmmproc.ID{PID: st.PID, Start: st.PIDStart} }
