package node

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/image"
)

// containerUser is the user container c of pod runs as, "user[:group]"
// with names or numbers, "" for root. As with a container runtime, the
// security context's runAsUser and runAsGroup (the container's, else the
// pod's) replace the parts of the image's user they set. With
// runAsNonRoot, a user that is root, or that cannot be told from root
// without the image's passwd file (a name), is refused as the kubelet
// refuses it.
func containerUser(pod *corev1.Pod, c *corev1.Container, img image.Config) (string, error) {
	var runUser, runGroup *int64
	var nonRoot *bool
	if sc := pod.Spec.SecurityContext; sc != nil {
		runUser, runGroup, nonRoot = sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot
	}
	if sc := c.SecurityContext; sc != nil {
		runUser, runGroup, nonRoot = orPtr(sc.RunAsUser, runUser), orPtr(sc.RunAsGroup, runGroup), orPtr(sc.RunAsNonRoot, nonRoot)
	}
	user, group, _ := strings.Cut(img.User, ":")
	if runUser != nil {
		user = strconv.FormatInt(*runUser, 10)
	}
	if runGroup != nil {
		group = strconv.FormatInt(*runGroup, 10)
	}
	// Numbers in their plain form: "00" is root too, and the guest's
	// passwd lookup compares text.
	user, group = plainNumber(user), plainNumber(group)
	if nonRoot != nil && *nonRoot {
		switch _, err := strconv.ParseUint(user, 10, 32); {
		case runUser != nil && *runUser == 0:
			return "", fmt.Errorf("container %q has runAsNonRoot and its runAsUser is 0 (root)", c.Name)
		case user == "" || user == "0":
			return "", fmt.Errorf("container %q has runAsNonRoot and image %s runs as root (hint: set runAsUser in the pod's securityContext)", c.Name, c.Image)
		case err != nil:
			return "", fmt.Errorf("container %q has runAsNonRoot and image %s has the non-numeric user %q, which cannot be checked to be non-root (hint: set runAsUser in the pod's securityContext)", c.Name, c.Image, user)
		}
	}
	if user == "" && group == "" {
		return "", nil
	}
	for _, part := range []string{user, group} {
		if part != "" && !userName.MatchString(part) {
			return "", fmt.Errorf("container %q: image %s has the user %q, which is no user or group name or number", c.Name, c.Image, img.User)
		}
	}
	if user == "" {
		user = "0"
	}
	if group != "" {
		return user + ":" + group, nil
	}
	return user, nil
}

// plainNumber is s without leading zeros when it is a number, else s.
func plainNumber(s string) string {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return s
}

// userName is what a user or group may be called: a number, or a name
// of the characters useradd and busybox adduser accept.
var userName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)

func orPtr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// asUserFunc is a POSIX shell function, for busybox and full systems
// alike: as_user SPEC SETHOME CMD [ARG...] runs CMD as SPEC
// ("user[:group]", names looked up in /etc/passwd and /etc/group, a
// number that is in neither taken as it is, with group 0 as runc does).
// With SETHOME 1, HOME becomes the user's home directory. It switches
// with the first of util-linux setpriv, coreutils chroot --userspec and
// su that the image has; with none it says so and exits 126. The
// supplementary groups are cleared.
const asUserFunc = `as_user() {
	spec=$1 sethome=$2
	shift 2
	u=${spec%%:*} g= uid= gid= name= home=/
	case $spec in *:*) g=${spec#*:} ;; esac
	if [ -r /etc/passwd ]; then
		while IFS=: read -r n _ i gi _ h _ || [ -n "$n" ]; do
			if [ "$u" = "$n" ] || [ "$u" = "$i" ]; then uid=$i gid=$gi name=$n home=$h; break; fi
		done </etc/passwd
	fi
	if [ -z "$uid" ]; then
		case $u in
		*[!0-9]*) echo "banger: user $u is not in the image's /etc/passwd" >&2; exit 126 ;;
		*) uid=$u gid=0 ;;
		esac
	fi
	pgid=$gid
	if [ -n "$g" ]; then
		gid=
		case $g in
		*[!0-9]*)
			if [ -r /etc/group ]; then
				while IFS=: read -r n _ i _ || [ -n "$n" ]; do
					if [ "$g" = "$n" ]; then gid=$i; break; fi
				done </etc/group
			fi
			if [ -z "$gid" ]; then echo "banger: group $g is not in the image's /etc/group" >&2; exit 126; fi ;;
		*) gid=$g ;;
		esac
	fi
	if [ "$sethome" = 1 ]; then export HOME="${home:-/}"; fi
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups true 2>/dev/null; then
		exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
	fi
	if chroot --skip-chdir --userspec="$uid:$gid" / true 2>/dev/null; then
		exec chroot --skip-chdir --userspec="$uid:$gid" --groups="$gid" / "$@"
	fi
	# Options before "--": busybox su would take a -c among the
	# command's arguments for its own.
	if [ -n "$name" ] && [ "$gid" = "$pgid" ] && su -m -s /bin/sh -c true -- "$name" 2>/dev/null; then
		exec su -m -s /bin/sh -c 'exec "$0" "$@"' -- "$name" "$@"
	fi
	echo "banger: cannot run as user $spec (uid $uid, gid $gid): the image has no setpriv with --reuid, no chroot with --userspec, and no su for this user and group" >&2
	exit 126
}
`

// userScript is the guest's user.sh for a container running as user
// (containerUser): "sh user.sh CMD [ARG...]" runs CMD as that user, for
// the main process and kubectl exec alike. sethome says whether HOME is
// the user's (neither the image nor the pod set it).
func userScript(user string, sethome bool) string {
	home := "0"
	if sethome {
		home = "1"
	}
	return "#!/bin/sh\n" + asUserFunc + "as_user " + guest.QuoteArgs([]string{user}) + " " + home + ` "$@"` + "\n"
}
