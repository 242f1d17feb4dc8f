#!/bin/sh
# The first process of an isolated devkit sandbox, run by `unshare` as PID 1 of new mount, PID, UTS,
# IPC, network and cgroup namespaces, still seeing this machine's files: assemble the sandbox's root
# (the cached Debian base, its own overlay layer on top, plain directories where overlayfs cannot go),
# mount what a Debian system expects, pivot into it and exec its init. Every mount made here exists in
# the sandbox's mount namespace only and goes with it: this machine's mount table never changes.
#
# usage: boot.sh BOX BASE NAME INIT   (cgroups to mount inside: $DEVKIT_CGROUPS, one "TYPE DIR OPTS" a line;
# the directories bound in: $DEVKIT_DATA_DIRS)
set -eu
box=$1 base=$2 name=$3 init=$4
r=$box/mnt

mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$base,upperdir=$box/upper,workdir=$box/work" "$r"
# plain directories ($DEVKIT_DATA_DIRS): dockerd's overlay2 (and any overlay mount) fails on an
# overlayfs upper layer, so where data lives (homes, /var/lib/devkit and with them the stacks' base
# dirs, /srv, /tmp, /var/lib/docker) is a directory of this machine's filesystem, bound in. A sandbox
# made before a directory joined the list has none for it: its files stay in its own layer
for d in ${DEVKIT_DATA_DIRS:-}; do
  [ -d "$box/data/$d" ] || continue
  mkdir -p "$r/$d"
  mount --bind "$box/data/$d" "$r/$d"
done

mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
# /proc/sys read-only, except the network's (per namespace: dockerd sets ip_forward there)
mount --bind "$r/proc/sys" "$r/proc/sys"
mount --bind "$r/proc/sys/net" "$r/proc/sys/net"
mount -o remount,bind,ro,nosuid,nodev,noexec "$r/proc/sys"
if [ -e "$r/proc/sysrq-trigger" ]; then
  mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
  mount -o remount,bind,ro "$r/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"

# cgroups: inside the cgroup namespace each hierarchy's root is the sandbox's own cgroup
printf '%s\n' "${DEVKIT_CGROUPS:-}" | while read -r type dir opts; do
  [ -n "$type" ] || continue
  if [ "$dir" = . ]; then
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"
    continue
  fi
  if ! mountpoint -q "$r/sys/fs/cgroup"; then
    mount -t tmpfs -o nosuid,nodev,noexec,mode=755,size=64k cgroup "$r/sys/fs/cgroup"
  fi
  mkdir -p "$r/sys/fs/cgroup/$dir"
  if [ "$type" = cgroup2 ]; then
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup/$dir"
  else
    mount -t cgroup -o "nosuid,nodev,noexec,$opts" cgroup "$r/sys/fs/cgroup/$dir"
    case $dir in *,*)  # co-mounted controllers (cpu,cpuacct): the usual names as links
      for c in $(echo "$dir" | tr , ' '); do ln -sfn "$dir" "$r/sys/fs/cgroup/$c"; done ;;
    esac
  fi
done
if mountpoint -q "$r/sys/fs/cgroup" && [ ! -e "$r/sys/fs/cgroup/cgroup.controllers" ]; then
  mount -o remount,ro,nosuid,nodev,noexec "$r/sys/fs/cgroup"  # the tmpfs that holds them
fi

# a /dev of its own: the usual character devices, a private devpts, shm and mqueue
mount -t tmpfs -o nosuid,noexec,mode=755,size=64k dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
# FUSE, where this machine's kernel has it: a cluster's agent hosts mount the manager host's vfolder
# root with sshfs (0666, as Debian's udev makes it)
if [ -c /dev/fuse ]; then mknod -m 666 "$r/dev/fuse" c 10 229; fi
mkdir -m 755 "$r/dev/pts"
mkdir -m 1777 "$r/dev/shm"
mkdir -m 1777 "$r/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$r/dev/mqueue"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"

mount -t tmpfs -o nosuid,nodev,mode=755 run "$r/run"
mkdir -p "$r/run/sshd" "$r/run/lock" "$r/run/devkit/oldroot"
chmod 1777 "$r/run/lock"
cp "$init" "$r/run/devkit/init.py"

hostname "$name"
cd "$r"
pivot_root . run/devkit/oldroot
cd /
umount -l /run/devkit/oldroot
rmdir /run/devkit/oldroot
exec /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  /usr/bin/python3 -I /run/devkit/init.py
