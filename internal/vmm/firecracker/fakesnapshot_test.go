package firecracker

// The fake Firecracker's snapshots: /snapshot/create writes the VM's
// configuration as the state file and a sparse memory file of the VM's
// size; /snapshot/load reads them back and checks what Firecracker checks.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// fakeSnapshot is the content of the fake's snapshot_path file.
type fakeSnapshot struct {
	Version string `json:"fake_firecracker_version"`
	VM      fakeVM `json:"vm"`
}

// memoryHeader starts the fake's memory files; the rest is a hole.
const memoryHeader = "fake guest memory\n"

// hostPath is where a path Firecracker was given is on the host.
func (f *fakeFirecracker) hostPath(p string) string {
	if f.jail != nil {
		return filepath.Join(f.jail.root, p)
	}
	return p
}

func (f *fakeFirecracker) drive(id string) map[string]any {
	for _, d := range f.vm.Drives {
		if d["drive_id"] == id {
			return d
		}
	}
	return nil
}

// memBytes is the guest memory size of vm.
func memBytes(vm fakeVM) (int64, error) {
	n, ok := vm.Machine["mem_size_mib"].(json.Number)
	if !ok {
		return 0, errors.New("no machine configuration")
	}
	mib, err := n.Int64()
	return mib << 20, err
}

// createSnapshot writes a full snapshot; the caller checked the VM is paused.
func (f *fakeFirecracker) createSnapshot(obj map[string]any) error {
	if t, ok := obj["snapshot_type"]; ok && t != "Full" {
		return fmt.Errorf("the fake makes Full snapshots only, not %v", t)
	}
	size, err := memBytes(f.vm)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(fakeSnapshot{Version: f.cfg.Version, VM: f.vm})
	// Like Firecracker: create the files, or truncate and overwrite them.
	if err := os.WriteFile(f.hostPath(obj["snapshot_path"].(string)), data, 0o644); err != nil {
		return fmt.Errorf("Cannot save the microVM state: %w", err)
	}
	mem, err := os.OpenFile(f.hostPath(obj["mem_file_path"].(string)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("Cannot create the memory file: %w", err)
	}
	defer mem.Close()
	if _, err := mem.WriteString(memoryHeader); err != nil {
		return err
	}
	if err := mem.Truncate(size); err != nil {
		return err
	}
	return mem.Close()
}

// loadSnapshot restores the VM a snapshot holds, with the overrides; the
// caller checked nothing but the logger was configured.
func (f *fakeFirecracker) loadSnapshot(obj map[string]any) error {
	raw, err := os.ReadFile(f.hostPath(obj["snapshot_path"].(string)))
	if err != nil {
		return fmt.Errorf("Cannot open the snapshot file: %w", err)
	}
	var snap fakeSnapshot
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&snap); err != nil {
		return fmt.Errorf("Cannot deserialize the microVM state: %w", err)
	}
	if snap.Version != f.cfg.Version {
		return fmt.Errorf("snapshot version %s is not supported by Firecracker %s", snap.Version, f.cfg.Version)
	}
	backend, hasBackend := obj["mem_backend"].(map[string]any)
	memFile, hasFile := obj["mem_file_path"].(string)
	switch {
	case hasBackend == hasFile:
		return errors.New("exactly one of mem_backend and mem_file_path must be given")
	case hasBackend && backend["backend_type"] != "File":
		return fmt.Errorf("the fake loads File memory backends only, not %v", backend["backend_type"])
	case hasBackend:
		memFile = backend["backend_path"].(string)
	}
	want, err := memBytes(snap.VM)
	if err != nil {
		return err
	}
	st, err := os.Stat(f.hostPath(memFile))
	if err != nil {
		return fmt.Errorf("Cannot open the memory file: %w", err)
	}
	if st.Size() != want {
		return fmt.Errorf("memory file %s has %d bytes, the snapshot's guest has %d", memFile, st.Size(), want)
	}
	// Firecracker reopens the disks the snapshot names.
	for _, d := range snap.VM.Drives {
		if _, err := os.Stat(f.hostPath(d["path_on_host"].(string))); err != nil {
			return fmt.Errorf("Cannot restore block device %v: %w", d["drive_id"], err)
		}
	}
	overrides, _ := obj["network_overrides"].([]any)
	for _, o := range overrides {
		o := o.(map[string]any)
		found := false
		for _, n := range snap.VM.Nets {
			if n["iface_id"] == o["iface_id"] {
				n["host_dev_name"] = o["host_dev_name"]
				found = true
			}
		}
		if !found {
			return fmt.Errorf("Invalid network override: no network interface %v in the snapshot", o["iface_id"])
		}
	}
	if vo, ok := obj["vsock_override"].(map[string]any); ok {
		if snap.VM.Vsock == nil {
			return errors.New("vsock_override given, but the snapshot has no vsock device")
		}
		snap.VM.Vsock["uds_path"] = vo["uds_path"]
	}
	if v := snap.VM.Vsock; v != nil {
		if _, err := os.Stat(filepath.Dir(f.hostPath(v["uds_path"].(string)))); err != nil {
			return fmt.Errorf("Cannot restore the vsock device: %w", err)
		}
	}
	snap.VM.Boot = nil // a restored VM shows no boot source
	f.vm = snap.VM
	f.started, f.paused = true, true
	if obj["resume_vm"] == true {
		f.paused, f.serialOn = false, true
		go f.serial(os.Stdin)
	}
	return nil
}
