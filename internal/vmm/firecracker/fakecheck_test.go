package firecracker

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFakeEnforcesSpec shows the fake can fail: it rejects what the real
// Firecracker rejects (per firecracker-api.yaml and its ordering rules), so
// the driver tests passing against it means something.
func TestFakeEnforcesSpec(t *testing.T) {
	spec, err := loadSpec(filepath.Join(sharedDir(t), "reference", "firecracker", "firecracker-api.yaml"))
	must(t, err)
	dir := t.TempDir()
	cfg := fakeConfig{Record: filepath.Join(dir, "record.jsonl"), Version: "1.9.0"}
	f := &fakeFirecracker{spec: spec, cfg: cfg, console: io.Discard, exit: make(chan int, 1)}
	c := &Client{Socket: serveUnix(t, f)}
	kernel := filepath.Join(dir, "vmlinux")
	must(t, os.WriteFile(kernel, nil, 0o644))

	type req struct {
		path string
		body any
		want string // "" = accepted
	}
	for i, r := range []req{
		{"/actions", map[string]any{"action_type": "InstanceStart"}, "without kernel configuration"},
		{"/actions", map[string]any{"action_type": "SendCtrlAltDel"}, "not supported before starting"},
		{"/actions", map[string]any{"action_type": "Reboot"}, "unknown variant `Reboot`"},
		{"/nope", map[string]any{}, "Invalid request method and/or path: PUT /nope."},
		{"/machine-config", map[string]any{"vcpu_count": 2}, "missing field `mem_size_mib`"},
		{"/machine-config", map[string]any{"vcpu_count": "2", "mem_size_mib": 128}, "body.vcpu_count: invalid type: expected an integer"},
		{"/machine-config", map[string]any{"vcpu_count": 0, "mem_size_mib": 128}, "out of range"},
		{"/machine-config", map[string]any{"vcpu_count": 2, "mem_size_mib": 128, "ht_enabled": false}, "unknown field `ht_enabled`"},
		{"/machine-config", map[string]any{"vcpu_count": 2, "mem_size_mib": 128}, ""},
		{"/boot-source", map[string]any{"kernel_image_path": kernel + ".gone"}, "kernel_image_path"},
		{"/boot-source", map[string]any{"kernel_image_path": kernel, "boot_args": "console=ttyS0"}, ""},
		{"/drives/rootfs", map[string]any{"drive_id": "other", "path_on_host": kernel, "is_root_device": true, "is_read_only": false}, "id from the path does not match"},
		{"/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": kernel, "is_root_device": "yes", "is_read_only": false}, "expected a boolean"},
		{"/network-interfaces/eth0", map[string]any{"iface_id": "eth0"}, "missing field `host_dev_name`"},
		{"/actions", map[string]any{"action_type": "InstanceStart"}, "no root drive"},
		{"/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": kernel, "is_root_device": true, "is_read_only": false}, ""},
		{"/actions", map[string]any{"action_type": "InstanceStart"}, ""},
		{"/actions", map[string]any{"action_type": "InstanceStart"}, "already running"},
		{"/machine-config", map[string]any{"vcpu_count": 2, "mem_size_mib": 128}, "not supported after starting"},
		{"/logger", map[string]any{"log_path": kernel}, "not supported after starting"},
		{"/actions", map[string]any{"action_type": "SendCtrlAltDel"}, ""},
	} {
		err := c.Put(context.Background(), r.path, r.body)
		var apiErr *APIError
		switch {
		case r.want == "" && err != nil:
			t.Errorf("%d: PUT %s %v: %v", i, r.path, r.body, err)
		case r.want != "" && (!errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.FaultMessage, r.want)):
			t.Errorf("%d: PUT %s %v: error %v, want a 400 with %q", i, r.path, r.body, err, r.want)
		}
	}
	if _, err := c.Send(context.Background(), "DELETE", "/drives/rootfs", 204, nil); err == nil {
		t.Error("the fake accepted DELETE /drives/rootfs, which the spec lacks")
	}
}

// TestFakeEnforcesSnapshotRules: the fake rejects snapshot requests the
// spec or Firecracker's state machine forbid.
func TestFakeEnforcesSnapshotRules(t *testing.T) {
	spec, err := loadSpec(filepath.Join(sharedDir(t), "reference", "firecracker", "firecracker-api.yaml"))
	must(t, err)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	must(t, os.WriteFile(file("vmlinux"), nil, 0o644))
	newFake := func() *Client {
		f := &fakeFirecracker{spec: spec, cfg: fakeConfig{Record: file("record.jsonl"), Version: "1.16.1"}, console: io.Discard, exit: make(chan int, 1)}
		return &Client{Socket: serveUnix(t, f)}
	}
	boot := []req{
		{"PUT", "/machine-config", map[string]any{"vcpu_count": 1, "mem_size_mib": 8}, ""},
		{"PUT", "/boot-source", map[string]any{"kernel_image_path": file("vmlinux")}, ""},
		{"PUT", "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": file("vmlinux"), "is_root_device": true, "is_read_only": false}, ""},
	}
	create := map[string]any{"snapshot_type": "Full", "snapshot_path": file("vmstate"), "mem_file_path": file("memory")}
	load := map[string]any{"snapshot_path": file("vmstate"), "mem_backend": map[string]any{"backend_type": "File", "backend_path": file("memory")}}

	sendAll(t, newFake(), append(boot,
		req{"PATCH", "/vm", map[string]any{"state": "Paused"}, "not supported before starting"},
		req{"PUT", "/snapshot/create", create, "not supported before starting"},
		req{"PATCH", "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": file("vmlinux")}, "not supported before starting"},
		req{"PUT", "/snapshot/load", load, "not allowed after configuring"},
		req{"PUT", "/actions", map[string]any{"action_type": "InstanceStart"}, ""},
		req{"PUT", "/snapshot/create", create, "not paused"},
		req{"PATCH", "/vm", map[string]any{"state": "Stopped"}, "unknown variant `Stopped`"},
		req{"PATCH", "/vm", map[string]any{"state": "Paused"}, ""},
		req{"PUT", "/snapshot/create", map[string]any{"snapshot_path": file("vmstate")}, "missing field `mem_file_path`"},
		req{"PUT", "/snapshot/create", map[string]any{"snapshot_path": file("vmstate"), "mem_file_path": file("memory"), "version": "1.0"}, "unknown field `version`"},
		req{"PUT", "/snapshot/create", create, ""},
		req{"PUT", "/snapshot/load", load, "not supported after starting"},
	))

	sendAll(t, newFake(), []req{
		{"PUT", "/logger", map[string]any{"log_path": file("vmlinux")}, ""},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": map[string]any{"backend_type": "Disk", "backend_path": file("memory")}}, "unknown variant `Disk`"},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": map[string]any{"backend_path": file("memory")}}, "missing field `backend_type`"},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_file_path": file("memory"), "mem_backend": map[string]any{"backend_type": "File", "backend_path": file("memory")}}, "exactly one of"},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": load["mem_backend"], "network_overrides": []any{map[string]any{"iface_id": "eth0"}}}, "missing field `host_dev_name`"},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": load["mem_backend"], "network_overrides": []any{map[string]any{"iface_id": "eth0", "host_dev_name": "tap0"}}}, "no network interface eth0"},
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": load["mem_backend"], "vsock_override": map[string]any{"uds_path": file("v.sock")}}, "no vsock device"},
	})
	sendAll(t, newFake(), []req{
		{"PUT", "/snapshot/load", map[string]any{"snapshot_path": file("vmstate"), "mem_backend": load["mem_backend"], "resume_vm": false, "clock_realtime": true}, ""},
		{"PATCH", "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": file("vmlinux"), "is_read_only": true}, "unknown field `is_read_only`"},
		{"PATCH", "/drives/data", map[string]any{"drive_id": "data", "path_on_host": file("vmlinux")}, "Could not find the drive data"},
		{"PATCH", "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": file("gone")}, "path_on_host"},
		{"PATCH", "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": file("vmlinux")}, ""},
		{"PATCH", "/vm", map[string]any{"state": "Resumed"}, ""},
	})
}

// req is a request to the fake and the fault wanted ("" = accepted).
type req struct {
	method, path string
	body         any
	want         string
}

func sendAll(t *testing.T, c *Client, rs []req) {
	t.Helper()
	for i, r := range rs {
		_, err := c.Send(context.Background(), r.method, r.path, 204, r.body)
		var apiErr *APIError
		switch {
		case r.want == "" && err != nil:
			t.Errorf("%d: %s %s %v: %v", i, r.method, r.path, r.body, err)
		case r.want != "" && (!errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.FaultMessage, r.want)):
			t.Errorf("%d: %s %s %v: error %v, want a 400 with %q", i, r.method, r.path, r.body, err, r.want)
		}
	}
}
