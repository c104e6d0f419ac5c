#!/bin/sh
# unprivileged-manager.sh - inside scripts/systemd-harness (root, private
# namespaces): runs CMD as user UID beside a systemd user manager of that
# user's own, unprivileged as a real session's, and tears it down.
#
#   sh spec/support/unprivileged-manager.sh UID CMD [ARGS...]
#
# CMD gets HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR (/run/user/UID) of
# that user. The manager gets a delegated cgroup (a child of the
# harness's, given to the user) as logind would give it. Exit status:
# CMD's, or 1 when the manager does not come up (its log on stderr).
set -eu
[ -n "${SYSTEMD_HARNESS_DIR:-}" ] || { echo "unprivileged-manager: only inside scripts/systemd-harness" >&2; exit 2; }
U=$1; shift
AS="setpriv --reuid $U --regid $U --clear-groups"
R=/run/user/$U
H=$(mktemp -d /run/systemd/unprivileged-home.XXXXXX)
LOG="$SYSTEMD_HARNESS_DIR/unprivileged-manager.log"
CGS=""
MGR=""
teardown() {
  rc=$?
  if [ -n "$MGR" ]; then
    kill -TERM "$MGR" 2>/dev/null || true
    i=0
    while kill -0 "$MGR" 2>/dev/null && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
    kill -KILL "$MGR" 2>/dev/null || true
    wait "$MGR" 2>/dev/null || true
  fi
  for cg in $CGS; do
    i=0
    while [ -d "$cg" ] && [ $i -lt 200 ]; do
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$cg" ] && sleep 0.01
      i=$((i + 1))
    done
  done
  rm -rf "$H" "$R"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -m 700 "$R" && chown "$U:$U" "$R"
mkdir -p "$H/.config/systemd/user" && chown -R "$U:$U" "$H"
name=$(basename "$SYSTEMD_HARNESS_DIR")
for cg in /sys/fs/cgroup/systemd/luasvc-harness-"$name" /sys/fs/cgroup/unified/luasvc-harness-"$name" \
          /sys/fs/cgroup/luasvc-harness-"$name"; do
  [ -d "$cg" ] || continue
  mkdir "$cg/unprivileged" && chown -R "$U:$U" "$cg/unprivileged" && CGS="$CGS $cg/unprivileged"
done
export HOME="$H" XDG_CONFIG_HOME="$H/.config" XDG_RUNTIME_DIR="$R"
sh -c 'for cg in $1; do echo $$ > "$cg/cgroup.procs"; done; shift; exec "$@"' sh "$CGS" \
  $AS /lib/systemd/systemd --user </dev/null >"$LOG" 2>&1 &
MGR=$!
i=0
while :; do
  s=$($AS systemctl --user is-system-running 2>/dev/null || true)
  case $s in running|degraded) break ;; esac
  i=$((i + 1))
  if [ $i -gt 1000 ] || ! kill -0 "$MGR" 2>/dev/null; then
    echo "unprivileged-manager: the manager did not come up ($s); its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.01
done
set +e
$AS "$@"
