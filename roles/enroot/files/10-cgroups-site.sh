#!/usr/bin/env bash
# hpc.vcluster site hook, in place of enroot's 10-cgroups.sh: bind the caller's cgroup
# subtree of each hierarchy read-only into the container.
# Where several cgroup file systems are mounted on one mount point (a node that is itself
# a container: podman stacks the host's hierarchy over its own), only the last mount is
# visible, so the mount that serves a hierarchy is the last matching line of mountinfo.
set -euo pipefail

# "<root> <mount point>" of the visible mount of a hierarchy ($1: its controllers, comma
# separated, or empty for the unified cgroup2 hierarchy).
visible_mount() {
    awk -v want="$1" '
        {
            split($0, halves, " - ")
            split(halves[1], pre, " ")
            split(halves[2], post, " ")
            if (want == "") {
                if (post[1] == "cgroup2") found = pre[4] " " pre[5]
                next
            }
            if (post[1] != "cgroup") next
            n = split(post[3], opts, ",")
            split("", have)
            for (i = 1; i <= n; i++) have[opts[i]] = 1
            m = split(want, wanted, ",")
            ok = 1
            for (i = 1; i <= m; i++) if (!(wanted[i] in have)) ok = 0
            if (ok) found = pre[4] " " pre[5]
        }
        END { if (found != "") print found }' /proc/self/mountinfo
}

while IFS=: read -r _ controllers path; do
    read -r root mountpoint <<< "$(visible_mount "${controllers}")" || true
    if [ -n "${root:-}" ] && [ -n "${mountpoint:-}" ]; then
        relative="${path#"${root%/}"}"
        subtree="${mountpoint}${relative:+/${relative#/}}${SLURM_STEP_ID:+/..}"
        printf '%s %s none x-create=dir,rbind,nosuid,noexec,nodev,ro\n' "${subtree}" "${mountpoint}" >> "${ENROOT_MOUNTS}"
    fi
    root="" mountpoint=""
done < /proc/self/cgroup

printf 'none /sys/fs/cgroup none rbind,remount,nosuid,noexec,nodev,ro,rslave,nofail,silent\n' >> "${ENROOT_MOUNTS}"
