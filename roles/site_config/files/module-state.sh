#!/bin/sh
# hpc.vcluster.site_config: for each module name given, print "NAME present|loadable|missing".
# present: loaded, or built into the kernel (a file system it registers counts too, since
# built-in modules without parameters have no /sys/module entry); loadable: modprobe finds it.
set -u
release=$(uname -r)
for m in "$@"; do
  u=$(printf %s "$m" | tr - _)
  if [ -d "/sys/module/$u" ] || grep -qw -- "$u" /proc/filesystems \
     || grep -q -e "/$m\.ko" -e "/$u\.ko" "/lib/modules/$release/modules.builtin" 2>/dev/null; then
    echo "$m present"
  elif [ -e "/lib/modules/$release/modules.dep" ] && modprobe -n -q -- "$m" 2>/dev/null; then
    echo "$m loadable"
  else
    echo "$m missing"
  fi
done
