package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/vm"
)

// vmName is the banger VM of a pod: "k8s-", as much of namespace-name as
// fits, and a hash of the pod's UID, so that a pod recreated under the
// same name gets another VM and a VM is found again from its pod alone.
func vmName(pod *corev1.Pod) string {
	sum := sha256.Sum256([]byte(pod.UID))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	base := "k8s-" + pod.Namespace + "-" + pod.Name
	// Pod and namespace names are DNS labels or subdomains: lower-case
	// letters, digits, '-' and '.', which banger's names accept.
	if len(base) > 40 {
		base = base[:40]
	}
	return strings.TrimRight(base, "-.") + suffix
}

// podVMName matches the names vmName makes.
var podVMName = regexp.MustCompile(`^k8s-[a-z0-9.-]*-[0-9a-f]{10}$`)

// isPodVM says whether a VM name is one vmName makes.
func isPodVM(name string) bool { return podVMName.MatchString(name) }

// podResources are the VM's vCPUs and memory for pod: the sum over its
// containers of their limits, else their requests, rounded up to whole
// vCPUs and MiB; banger's defaults for what none of them sets.
func podResources(pod *corev1.Pod) (cpus, memoryMiB int) {
	var cpu, mem resource.Quantity
	for _, c := range pod.Spec.Containers {
		for name, sum := range map[corev1.ResourceName]*resource.Quantity{corev1.ResourceCPU: &cpu, corev1.ResourceMemory: &mem} {
			q, ok := c.Resources.Limits[name]
			if !ok {
				q, ok = c.Resources.Requests[name]
			}
			if ok {
				sum.Add(q)
			}
		}
	}
	cpus, memoryMiB = vm.DefaultCPUs, vm.DefaultMemoryMiB
	if !cpu.IsZero() {
		cpus = int((cpu.MilliValue() + 999) / 1000)
	}
	if !mem.IsZero() {
		memoryMiB = int((mem.Value() + (1<<20 - 1)) >> 20)
	}
	return cpus, memoryMiB
}

// mainScript is the shell script that runs container c as the guest's
// main process: its environment and working directory, then its command
// and arguments, output to main.log; when it ends, its exit status is
// written to exit (atomically, through a rename), so that the status
// survives the SSH session that started the script.
func mainScript(c *corev1.Container, _ image.Config, dir string) (string, error) {
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(argv) == 0 {
		return "", fmt.Errorf("container %q has no command: banger cannot read an image's entrypoint yet (hint: set command in the pod spec)", c.Name)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "mkdir -p %s\n", guest.QuoteArgs([]string{dir}))
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue // resolved by virtual-kubelet before CreatePod
		}
		env[e.Name] = e.Value
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s\n", guest.QuoteArgs([]string{k + "=" + env[k]}))
	}
	log, exit := dir+"/main.log", dir+"/exit"
	cd := ""
	if c.WorkingDir != "" {
		cd = "cd " + guest.QuoteArgs([]string{c.WorkingDir}) + " && "
	}
	fmt.Fprintf(&b, "(%sexec %s) </dev/null >>%s 2>&1\n", cd, guest.QuoteArgs(argv), guest.QuoteArgs([]string{log}))
	fmt.Fprintf(&b, "echo $? >%s.tmp && mv %s.tmp %s\n", exit, exit, exit)
	return b.String(), nil
}
