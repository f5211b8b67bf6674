package firecracker

// The Firecracker binary cannot be installed on the machines these tests
// run on (no internet, no Debian package), so the driver is tested against
// a FAKE Firecracker: this test binary, re-executed under the name
// "firecracker" (and "jailer") from PATH. It serves an HTTP API on the
// --api-sock unix socket and checks every request against Firecracker's
// own API description, firecracker-api.yaml, plus the ordering rules
// Firecracker enforces, answering as Firecracker does (204, or 400 with
// {"fault_message": …}). Everything it sees goes to a record file.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"
)

// fakeEnv names the environment variable holding the fake's config file.
const fakeEnv = "BANGER_FAKE_FIRECRACKER"

// fakeConfig tells the fake how to behave; tests write it as JSON.
type fakeConfig struct {
	Spec        string            // path of firecracker-api.yaml
	Record      string            // JSON lines of everything the fake saw
	Version     string            // vmm_version to report ("" = the spec's)
	Faults      map[string]string // API path → fault_message answered with 400
	Die         bool              // print some output and exit 3 before making the socket
	SocketDelay time.Duration     // sleep this long before making the socket
}

// recordEntry is one line of the record file.
type recordEntry struct {
	PID    int      `json:"pid,omitempty"`
	Argv   []string `json:"argv,omitempty"` // the jailer's arguments
	Method string   `json:"method,omitempty"`
	Path   string   `json:"path,omitempty"`
	Body   string   `json:"body,omitempty"`
	Status int      `json:"status,omitempty"`
	Fault  string   `json:"fault,omitempty"`
}

func (c fakeConfig) record(e recordEntry) {
	f, err := os.OpenFile(c.Record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake firecracker: record:", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(e)
	_, _ = f.Write(append(b, '\n'))
}

// jail is what the fake jailer hands the fake Firecracker.
type jail struct {
	root     string
	uid, gid int
}

// canRead reports whether the jailed uid/gid may read a file with st's
// owner and mode, by the kernel's rules (owner, else group, else other).
func (j *jail) canRead(st os.FileInfo) bool {
	s := st.Sys().(*syscall.Stat_t)
	perm := st.Mode().Perm()
	switch {
	case s.Uid == uint32(j.uid):
		return perm&0o400 != 0
	case s.Gid == uint32(j.gid):
		return perm&0o040 != 0
	}
	return perm&0o004 != 0
}

// runFake is the fake process's main, chosen by the name it was run as.
func runFake(cfgFile, name string, args []string) int {
	go func() { time.Sleep(2 * time.Minute); os.Exit(9) }() // never outlive a test run
	var cfg fakeConfig
	data, err := os.ReadFile(cfgFile)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake: config:", err)
		return 2
	}
	cfg.record(recordEntry{PID: os.Getpid()})
	if name == "jailer" {
		return runFakeJailer(cfg, args)
	}
	return runFakeFirecracker(cfg, args, nil)
}

func runFakeFirecracker(cfg fakeConfig, args []string, j *jail) int {
	if len(args) == 1 && args[0] == "--version" {
		if cfg.Version == "" {
			spec, err := loadSpec(cfg.Spec)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fake firecracker:", err)
				return 2
			}
			cfg.Version = spec.Info.Version
		}
		fmt.Printf("Firecracker v%s\n\n", cfg.Version)
		return 0
	}
	if len(args) != 2 || args[0] != "--api-sock" {
		fmt.Fprintf(os.Stderr, "Arguments parsing error: fake firecracker takes only --api-sock PATH, got %q\n", args)
		return 1
	}
	if cfg.Die {
		fmt.Println("fake firecracker: starting up")
		fmt.Fprintln(os.Stderr, "fake firecracker: Error creating the VMM: Kvm(Error(19))")
		return 3
	}
	time.Sleep(cfg.SocketDelay)
	spec, err := loadSpec(cfg.Spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake firecracker:", err)
		return 2
	}
	if cfg.Version == "" {
		cfg.Version = spec.Info.Version
	}
	if isLegacy(cfg.Version) {
		spec.legacyV024()
	}
	sock := args[1]
	if j != nil {
		sock = filepath.Join(j.root, sock)
		if st, err := os.Stat(j.root); err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(j.uid) {
			fmt.Fprintf(os.Stderr, "fake firecracker: jailed uid %d cannot create its socket in %s\n", j.uid, j.root)
			return 1
		}
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake firecracker: Failed to open the API socket:", err)
		return 1
	}
	f := &fakeFirecracker{spec: spec, cfg: cfg, jail: j, console: os.Stdout, exit: make(chan int, 1)}
	go func() { _ = (&http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return <-f.exit
}

// fakeFirecracker is the fake's API server.
type fakeFirecracker struct {
	spec    *apiSpec
	cfg     fakeConfig
	jail    *jail
	console io.Writer
	exit    chan int

	mu                             sync.Mutex
	started, bootSource, rootDrive bool
	configured                     bool // a resource other than the logger was set up
	paused                         bool
	serialOn                       bool
	vm                             fakeVM
}

// fakeVM is the VM's configuration as GET /vm/config shows it
// (FullVmConfiguration); it is what the fake's snapshots hold.
type fakeVM struct {
	Machine map[string]any   `json:"machine-config,omitempty"`
	Boot    map[string]any   `json:"boot-source,omitempty"`
	Drives  []map[string]any `json:"drives,omitempty"`
	Nets    []map[string]any `json:"network-interfaces,omitempty"`
	Vsock   map[string]any   `json:"vsock,omitempty"`
}

// upsert replaces the entry of list whose key field equals obj's, or appends obj.
func upsert(list []map[string]any, key string, obj map[string]any) []map[string]any {
	for i, e := range list {
		if e[key] == obj[key] {
			list[i] = obj
			return list
		}
	}
	return append(list, obj)
}

func (f *fakeFirecracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	status, fault, resp := f.handle(r.Method, r.URL.Path, body)
	f.mu.Unlock()
	f.cfg.record(recordEntry{Method: r.Method, Path: r.URL.Path, Body: string(body), Status: status, Fault: fault})
	w.Header().Set("Content-Type", "application/json")
	switch {
	case fault != "":
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"fault_message": fault})
	case resp != nil:
		w.WriteHeader(status)
		_, _ = w.Write(resp)
	default:
		w.WriteHeader(status)
	}
}

// handle answers one request; the caller holds f.mu.
func (f *fakeFirecracker) handle(method, path string, body []byte) (status int, fault string, resp []byte) {
	bad := func(format string, a ...any) (int, string, []byte) {
		return http.StatusBadRequest, fmt.Sprintf(format, a...), nil
	}
	op, params, ok := f.spec.route(method, path)
	if !ok {
		return bad("Invalid request method and/or path: %s %s.", method, path)
	}
	var v any
	if err := f.checkBody(op, body, &v); err != nil {
		return bad("%v", err)
	}
	obj, _ := v.(map[string]any)
	for k, pv := range params {
		if bv, ok := obj[k]; ok && bv != pv {
			return bad("The id from the path does not match the id from the body!")
		}
	}
	if method == http.MethodGet {
		switch path {
		case "/":
			state := "Not started"
			switch {
			case f.paused:
				state = "Paused"
			case f.started:
				state = "Running"
			}
			b, _ := json.Marshal(map[string]string{"app_name": "Firecracker", "id": "anonymous-instance", "state": state, "vmm_version": f.cfg.Version})
			return http.StatusOK, "", b
		case "/vm/config":
			b, _ := json.Marshal(f.vm)
			return http.StatusOK, "", b
		}
		return bad("the fake answers GET / and /vm/config only")
	}
	if (strings.Contains(op.Summary, "Pre-boot only") || path == "/logger") && f.started {
		return bad("The requested operation is not supported after starting the microVM.")
	}
	if (strings.Contains(op.Summary, "Post-boot only") || path == "/vm") && !f.started {
		return bad("The requested operation is not supported before starting the microVM.")
	}
	switch {
	case path == "/snapshot/load" && f.configured:
		return bad("Loading a microVM snapshot not allowed after configuring boot-specific resources.")
	case path == "/snapshot/create" && !f.paused:
		return bad("Cannot create a snapshot: the microVM is not paused.")
	case method == http.MethodPatch && strings.HasPrefix(path, "/drives/") && f.drive(params["drive_id"]) == nil:
		return bad("Could not find the drive %s.", params["drive_id"])
	}
	action, _ := obj["action_type"].(string)
	switch {
	case action == "InstanceStart" && f.started:
		return bad("The microVM is already running.")
	case action == "InstanceStart" && !f.bootSource:
		return bad("Cannot start microvm without kernel configuration.")
	case action == "InstanceStart" && !f.rootDrive:
		return bad("fake: no root drive configured before InstanceStart")
	case action == "SendCtrlAltDel" && !f.started:
		return bad("The requested operation is not supported before starting the microVM.")
	}
	if msg, ok := f.cfg.Faults[path]; ok {
		return bad("%s", msg)
	}
	if err := f.checkFiles(obj); err != nil {
		return bad("%v", err)
	}
	if method == http.MethodPut && path != "/logger" && path != "/metrics" && !strings.HasPrefix(path, "/snapshot/") && path != "/actions" {
		f.configured = true
	}
	switch {
	case path == "/snapshot/create":
		if err := f.createSnapshot(obj); err != nil {
			return bad("%v", err)
		}
	case path == "/snapshot/load":
		if err := f.loadSnapshot(obj); err != nil {
			// Firecracker ends after a failed load: its state is undefined.
			go func() {
				time.Sleep(50 * time.Millisecond)
				select {
				case f.exit <- 1:
				default:
				}
			}()
			return bad("Load snapshot error: %v", err)
		}
	case path == "/vm":
		f.paused = obj["state"] == "Paused"
		if !f.paused && !f.serialOn {
			fmt.Fprintln(f.console, "fake firecracker: guest resumed from a snapshot")
			f.serialOn = true
			go f.serial(os.Stdin)
		}
	case method == http.MethodPatch && strings.HasPrefix(path, "/drives/"):
		d := f.drive(params["drive_id"])
		for k, v := range obj {
			d[k] = v
		}
	case path == "/machine-config":
		f.vm.Machine = obj
	case path == "/boot-source":
		f.bootSource = true
		f.vm.Boot = obj
	case strings.HasPrefix(path, "/drives/"):
		f.rootDrive = f.rootDrive || obj["is_root_device"] == true
		f.vm.Drives = upsert(f.vm.Drives, "drive_id", obj)
	case strings.HasPrefix(path, "/network-interfaces/"):
		f.vm.Nets = upsert(f.vm.Nets, "iface_id", obj)
	case path == "/vsock":
		f.vm.Vsock = obj
	case action == "InstanceStart":
		f.started = true
		f.serialOn = true
		fmt.Fprintln(f.console, "fake firecracker: guest booted")
		go f.serial(os.Stdin)
	case action == "SendCtrlAltDel":
		// A guest booted with reboot=k resets; Firecracker then exits.
		go func() { time.Sleep(50 * time.Millisecond); f.exit <- 0 }()
	}
	return http.StatusNoContent, "", nil
}

// serial plays the guest's side of the serial console, which Firecracker
// connects to its stdin and stdout: it says whether that is a terminal and
// answers each line typed (ended by Enter, \r, or \n).
func (f *fakeFirecracker) serial(in *os.File) {
	fmt.Fprintf(f.console, "fake guest: console on a terminal: %v\n", term.IsTerminal(int(in.Fd())))
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			if b != '\r' && b != '\n' {
				line = append(line, b)
				continue
			}
			fmt.Fprintf(f.console, "fake guest: you typed %q\n", line)
			line = line[:0]
		}
		if err != nil {
			return
		}
	}
}

// checkBody decodes body into v and checks it against op's body schema.
func (f *fakeFirecracker) checkBody(op *apiOperation, body []byte, v *any) error {
	for _, p := range op.Parameters {
		if p.In != "body" {
			continue
		}
		if len(body) == 0 {
			if p.Required {
				return fmt.Errorf("Empty request body.")
			}
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("An error occurred when deserializing the json body of a request: %w", err)
		}
		return f.spec.check(*v, p.Schema, p.Name)
	}
	if len(body) > 0 {
		return fmt.Errorf("this request takes no body")
	}
	return nil
}

// checkFiles opens the files a request names, as Firecracker would: inside
// the jail when jailed, and the writable ones must belong to the jailed user.
func (f *fakeFirecracker) checkFiles(obj map[string]any) error {
	for _, k := range []string{"kernel_image_path", "initrd_path", "path_on_host", "log_path", "uds_path"} {
		p, ok := obj[k].(string)
		if !ok {
			continue
		}
		host := p
		if f.jail != nil {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("%s %q is not an absolute path in the jail", k, p)
			}
			host = filepath.Join(f.jail.root, p)
		}
		if k == "uds_path" { // Firecracker creates it; its directory must exist
			host = filepath.Dir(host)
		}
		st, err := os.Stat(host)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		writable := k == "path_on_host" || k == "log_path"
		if f.jail != nil && writable && st.Sys().(*syscall.Stat_t).Uid != uint32(f.jail.uid) {
			return fmt.Errorf("%s %s: permission denied for jailed uid %d", k, p, f.jail.uid)
		}
		if f.jail != nil && !writable && k != "uds_path" && !f.jail.canRead(st) {
			return fmt.Errorf("%s %s: permission denied for jailed uid %d gid %d", k, p, f.jail.uid, f.jail.gid)
		}
	}
	return nil
}
