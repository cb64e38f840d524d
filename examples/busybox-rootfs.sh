#!/bin/sh
# Write a busybox root filesystem tarball to OUT (default busybox-rootfs.tar), offline, from the
# machine's busybox-static: /bin/busybox, a symlink per applet, the usual empty directories and a
# three-user /etc/passwd (root, nobody, app 1000). Import it with
#   kiln import --change 'CMD ["sh"]' OUT busybox:latest
set -eu
OUT=${1:-busybox-rootfs.tar}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "busybox-rootfs.sh: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
umask 022
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/proc" "$root/sys" "$root/dev" \
         "$root/usr/bin" "$root/usr/sbin" "$root/sbin"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
(cd "$root" && for applet in $(./bin/busybox --list-full); do
   [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$applet" 2>/dev/null || true
 done)
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
tar --sort=name --numeric-owner --mtime=@1485449953 --format=gnu -C "$root" -cf "$OUT" .
