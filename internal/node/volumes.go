package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/thaloco/banger/internal/guest"
)

// The container's volumes, as far as a guest can have them: emptyDir is
// a directory everyone may write (on the guest's disk, or a tmpfs with
// medium Memory), configMap and secret volumes are their keys as files
// on a tmpfs mounted at the mount path (hiding what the image has there,
// and keeping secrets off the VM's disk), written into the guest before
// the main process starts (and not updated after). Other kinds, and subPath mounts, are left out
// with a warning event.

// ReasonFailedMount: a configMap or secret a volume needs could not be
// read (missing and not optional).
const ReasonFailedMount = "FailedMount"

// podVols are a pod's volumes as podVolumes returns them.
type podVols struct {
	files []volumeFile
	left  []string
}

// volumeFile is one file (or, with dir, directory) of the volumes.
type volumeFile struct {
	path  string // absolute, in the guest
	mode  int64
	dir   bool
	tmpfs bool // a directory: a tmpfs is mounted there first
	data  []byte
}

// podVolumes returns the files and directories the container's volume
// mounts put in the guest, and the mounts it leaves out, described.
func (p *pods) podVolumes(ctx context.Context, pod *corev1.Pod) (files []volumeFile, left []string, err error) {
	vols := map[string]corev1.VolumeSource{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v.VolumeSource
	}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		src, ok := vols[m.Name]
		desc := fmt.Sprintf("%s (%s %s)", m.MountPath, volumeKind(src), m.Name)
		if !ok || m.SubPath != "" || m.SubPathExpr != "" || !path.IsAbs(m.MountPath) {
			left = append(left, desc)
			continue
		}
		dir := path.Clean(m.MountPath)
		var data map[string][]byte
		var items []corev1.KeyToPath
		mode := int32(0o644)
		var optional bool
		switch {
		case src.EmptyDir != nil:
			files = append(files, volumeFile{path: dir, mode: 0o777, dir: true, tmpfs: src.EmptyDir.Medium == corev1.StorageMediumMemory})
			continue
		case src.ConfigMap != nil:
			cm, err := p.configMap(ctx, pod.Namespace, src.ConfigMap.Name)
			if apierrors.IsNotFound(err) && src.ConfigMap.Optional != nil && *src.ConfigMap.Optional {
				cm = &corev1.ConfigMap{}
			} else if err != nil {
				return nil, nil, fmt.Errorf("volume %s: configMap %s/%s: %w", m.Name, pod.Namespace, src.ConfigMap.Name, err)
			}
			data = map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			maps.Copy(data, cm.BinaryData)
			items, mode = src.ConfigMap.Items, orDefault(src.ConfigMap.DefaultMode, mode)
			optional = src.ConfigMap.Optional != nil && *src.ConfigMap.Optional
		case src.Secret != nil:
			s, err := p.secret(ctx, pod.Namespace, src.Secret.SecretName)
			if apierrors.IsNotFound(err) && src.Secret.Optional != nil && *src.Secret.Optional {
				s = &corev1.Secret{}
			} else if err != nil {
				return nil, nil, fmt.Errorf("volume %s: secret %s/%s: %w", m.Name, pod.Namespace, src.Secret.SecretName, err)
			}
			data, items, mode = s.Data, src.Secret.Items, orDefault(src.Secret.DefaultMode, mode)
			optional = src.Secret.Optional != nil && *src.Secret.Optional
		default:
			left = append(left, desc)
			continue
		}
		files = append(files, volumeFile{path: dir, mode: 0o755, dir: true, tmpfs: true})
		if len(items) == 0 {
			for _, k := range slices.Sorted(maps.Keys(data)) {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			b, ok := data[it.Key]
			if !ok && optional {
				continue // as a kubelet: an optional volume's missing key is left out
			}
			if !ok {
				return nil, nil, fmt.Errorf("volume %s: no key %q", m.Name, it.Key)
			}
			full, err := itemPath(dir, it.Path)
			if err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", m.Name, err)
			}
			for d := path.Dir(full); d != dir && d != "/"; d = path.Dir(d) {
				files = append(files, volumeFile{path: d, mode: 0o755, dir: true})
			}
			files = append(files, volumeFile{path: full, mode: int64(orDefault(it.Mode, mode)), data: b})
		}
	}
	// Parents before what they hold.
	slices.SortStableFunc(files, func(a, b volumeFile) int { return strings.Count(a.path, "/") - strings.Count(b.path, "/") })
	return files, left, nil
}

// itemPath is where an item at p (relative) of a volume mounted at dir
// goes; an error when p would leave dir. (The apiserver refuses such
// paths too; the node does not count on it.)
func itemPath(dir, p string) (string, error) {
	rel := path.Clean(p)
	if path.IsAbs(rel) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("item path %q leaves the volume", p)
	}
	return path.Join(dir, rel), nil
}

func orDefault(p *int32, def int32) int32 {
	if p != nil {
		return *p
	}
	return def
}

func (p *pods) configMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if p.client == nil {
		return nil, fmt.Errorf("the node has no API client")
	}
	return p.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (p *pods) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	if p.client == nil {
		return nil, fmt.Errorf("the node has no API client")
	}
	return p.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// volumesCommand is the guest's command that mounts the tmpfs of files
// and then unpacks their tar stream (volumesTar) from its stdin.
func volumesCommand(files []volumeFile) string {
	var b strings.Builder
	b.WriteString("set -e; ")
	for _, f := range files {
		if f.tmpfs {
			q := guest.QuoteArgs([]string{f.path})
			fmt.Fprintf(&b, "mkdir -p %s; mount -t tmpfs -o mode=%o banger-volume %s; ", q, f.mode, q)
		}
	}
	b.WriteString("tar -x -C / -f -")
	return b.String()
}

// volumesTar is files as a tar stream to unpack at the guest's root.
func volumesTar(files []volumeFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range files {
		h := &tar.Header{Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode, ModTime: now, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.dir {
			h.Name, h.Typeflag, h.Size = h.Name+"/", tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeVolumes puts the pod's volumes in the guest (podVolumes, read
// now unless r has them) and warns of the mounts it leaves out.
func (p *pods) writeVolumes(ctx context.Context, c *ssh.Client, r *podRun) error {
	if r.vols == nil {
		files, left, err := p.podVolumes(ctx, r.pod)
		if err != nil {
			return err
		}
		r.vols = &podVols{files: files, left: left}
	}
	files, left := r.vols.files, r.vols.left
	if len(left) > 0 {
		p.event(r, corev1.EventTypeWarning, ReasonVolumesNotMounted, fmt.Sprintf(
			"volume mount(s) %s are not in the guest: a banger node provides emptyDir, configMap and secret volumes, without subPath (hint: put the files in the image, or pass the values as environment variables)",
			strings.Join(left, ", ")))
	}
	if len(files) == 0 {
		return nil
	}
	stream, err := volumesTar(files)
	if err != nil {
		return err
	}
	var errb bytes.Buffer
	code, err := guest.Run(ctx, c, volumesCommand(files), bytes.NewReader(stream), io.Discard, &errb)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(errb.String()))
	}
	if err != nil {
		return fmt.Errorf("writing the volumes into VM %s: %w", r.vm, err)
	}
	return nil
}
