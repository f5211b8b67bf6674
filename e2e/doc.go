// Package e2e holds end-to-end tests of banger's kernel pipeline: the real
// kernel build script, banger's own CLI, the publish script with real rclone
// and a real HTTP server, and QEMU boots of the built kernel. It has no
// non-test code beyond this comment.
package e2e
