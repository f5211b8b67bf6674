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
