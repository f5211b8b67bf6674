package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
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

// warmingVMName matches the throwaway VM vm.Store.WarmImage boots for an
// image named as imageName names them.
var warmingVMName = regexp.MustCompile(`^(k8s-[0-9a-f]{16})-warming-[0-9a-f]{6}$`)

// warmingImage is the image whose warm a VM called name is, if it is one.
func warmingImage(name string) (string, bool) {
	m := warmingVMName.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1], true
}

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

// process is how a container runs: its argument vector, environment
// (NAME=VALUE, in order) and working directory.
type process struct {
	Argv []string
	Env  []string
	Dir  string
}

// containerProcess merges container c with its image's config as
// Kubernetes does: command replaces the image's entrypoint and then its
// cmd is dropped too, args replace cmd; the image's environment comes
// first, a variable the container sets replaces the image's in place;
// the container's working directory wins over the image's.
func containerProcess(c *corev1.Container, img image.Config) (process, error) {
	var pr process
	switch {
	case len(c.Command) > 0:
		pr.Argv = append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		pr.Argv = append(slices.Clone(img.Entrypoint), c.Args...)
	default:
		pr.Argv = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(pr.Argv) == 0 {
		return process{}, fmt.Errorf("container %q has no command and its image %s names no entrypoint or cmd (hint: set command in the pod spec)", c.Name, c.Image)
	}
	at := map[string]int{} // variable name -> index in pr.Env
	set := func(name, value string) {
		if i, ok := at[name]; ok {
			pr.Env[i] = name + "=" + value
			return
		}
		at[name] = len(pr.Env)
		pr.Env = append(pr.Env, name+"="+value)
	}
	for _, kv := range img.Env {
		name, value, _ := strings.Cut(kv, "=")
		if name != "" {
			set(name, value)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue // resolved by virtual-kubelet before CreatePod
		}
		set(e.Name, e.Value)
	}
	pr.Dir = img.WorkingDir
	if c.WorkingDir != "" {
		pr.Dir = c.WorkingDir
	}
	return pr, nil
}

// mainScript is the shell script that runs container c of pod, of an
// image with config img, as the guest's main process (containerProcess):
// its environment and working directory, then its command and arguments
// as its user (containerUser; through user.sh, which kubectl exec uses
// too), output appended to main.log; when it ends, its exit status is
// written to exit (atomically, through a rename), so that the status
// survives the SSH session that started the script. A restart runs the
// script again.
func mainScript(pod *corev1.Pod, c *corev1.Container, img image.Config, dir string) (string, error) {
	pr, err := containerProcess(c, img)
	if err != nil {
		return "", err
	}
	user, err := containerUser(pod, c, img)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "mkdir -p %s\n", guest.QuoteArgs([]string{dir}))
	argv := pr.Argv
	if user != "" {
		sethome := !slices.ContainsFunc(pr.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") })
		us := dir + "/" + userScriptName
		fmt.Fprintf(&b, "cat >%s <<'BANGER_USER_SCRIPT'\n%sBANGER_USER_SCRIPT\n", guest.QuoteArgs([]string{us}), userScript(user, sethome))
		argv = append([]string{"/bin/sh", us}, argv...)
	}
	for _, kv := range pr.Env {
		fmt.Fprintf(&b, "export %s\n", guest.QuoteArgs([]string{kv}))
	}
	log, exit := dir+"/"+mainLog, dir+"/exit"
	cd := ""
	if pr.Dir != "" {
		cd = "cd " + guest.QuoteArgs([]string{pr.Dir}) + " && "
	}
	fmt.Fprintf(&b, "(%sexec %s) </dev/null >>%s 2>&1\n", cd, guest.QuoteArgs(argv), guest.QuoteArgs([]string{log}))
	fmt.Fprintf(&b, "echo $? >%s.tmp && mv %s.tmp %s\n", exit, exit, exit)
	return b.String(), nil
}

// supported refuses what a pod run as one microVM of one container image
// cannot do: more containers (sidecars) or init containers, which would
// otherwise be silently left out.
func supported(pod *corev1.Pod) error {
	names := func(cs []corev1.Container) string {
		n := make([]string, len(cs))
		for i, c := range cs {
			n[i] = c.Name
		}
		return strings.Join(n, ", ")
	}
	switch {
	case len(pod.Spec.InitContainers) > 0:
		return fmt.Errorf("pod has init containers (%s): a banger node runs a pod as one microVM of its one container and runs no init containers (hint: do their work in the container's command, or schedule the pod on another node)", names(pod.Spec.InitContainers))
	case len(pod.Spec.Containers) > 1:
		return fmt.Errorf("pod has %d containers (%s): a banger node runs a pod as one microVM of one container (hint: run the others as their own pods, or schedule the pod on another node)", len(pod.Spec.Containers), names(pod.Spec.Containers))
	}
	return nil
}
