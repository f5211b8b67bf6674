// Package vm keeps banger's microVMs. Each VM is a directory
// <state>/vms/<name>/ holding its config, its runtime state (VMM pid and
// start time, sockets, boot timings), its own writable disk and its serial
// console log. The package creates, starts, stops and removes VMs with a
// vmm.Driver, reconciles the recorded state with the real VMM processes
// (a VM whose VMM died is shown stopped or crashed, with the reason found
// in its console log), and waits for guests to become ready.
//
// Every change to a VM holds the flock <state>/locks/vm-<name>.lock, so
// concurrent banger processes never interleave on one VM.
package vm
