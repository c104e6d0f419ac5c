#!/bin/sh
# leftovers.sh DIR - ctest's spec.leftovers, run after every spec (the
# spec_hosts fixture's cleanup): the processes the specs' helper started
# and did not see end (DIR/PID holds each one's start time, as in
# /proc/PID/stat; H.cleanup removes the file) are killed, when that pid is
# still the same process. Only a spec killed at its timeout leaves any:
# each is named here. Exit 0 either way: the timed-out spec is the failure.
dir=${1:?usage: leftovers.sh DIR}
[ -d "$dir" ] || exit 0
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  pid=${f##*/}
  want=$(cat "$f")
  rm -f "$f"
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
  # field 22 (starttime), counted after the ")" that ends the command name
  now=$(printf '%s\n' "${stat##*) }" | awk '{ print $20 }')
  if [ "$now" = "$want" ]; then
    echo "leftovers: killed process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)): a spec ended without its cleanup"
    kill -KILL "$pid" 2>/dev/null
  fi
done
exit 0
