package vmfile

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// aliases are keys people may reach for, and the key meant.
var aliases = map[string]string{
	"mem": "memory", "ram": "memory", "memory_mib": "memory", "vcpu": "cpus",
	"ports": "publish", "port": "publish", "forwards": "publish", "p": "publish",
	"disk": "disk_size", "size": "disk_size", "volumes": "mounts", "shares": "mounts",
	"init": "init_script", "script": "init_script", "cmdline": "kernel_args", "vmm_type": "vmm",
	"network": "net", "keys": "ssh_keys", "authorized_keys": "ssh_keys",
}

// suggest is the hint for an unknown key whose value is val.
func (f *File) suggest(key string, val *yaml.Node) string {
	if f.Single && val.Kind == yaml.MappingNode {
		return "no key of a VM takes a mapping; list VMs under vms:"
	}
	if key == "name" {
		return "a VM's name is its key under vms:"
	}
	if key == "vms" {
		return "vms: goes at the top level of the file"
	}
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	if _, ok := fieldByKey[norm]; ok {
		return fmt.Sprintf("did you mean %q? keys are written with '_'", norm)
	}
	if a, ok := aliases[norm]; ok {
		return fmt.Sprintf("did you mean %q?", a)
	}
	best, dist := "", 3
	for _, k := range Keys() {
		if d := editDistance(norm, k); d < dist {
			best, dist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "a VM's keys are " + strings.Join(Keys(), ", ")
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
