#!/usr/bin/env bash
# Supervisor of one process of the embedded stack (scripts/stack.sh starts each process through it):
#   scripts/supervise.sh <name> <state file> <command...>
# Runs <command>; when it exits without being asked to, starts it again after a backoff (1 s, doubling up to
# RESTART_BACKOFF_MAX, back to 1 s once a start has run RESTART_STABLE_AFTER seconds), logging each restart on its own
# stdout (the process's log). Gives up after RESTART_LIMIT restarts within RESTART_WINDOW seconds and says so in the
# log and the state file. TERM or INT stops it: the signal goes to the command, the supervisor waits for it to end and
# exits without a restart.
# State file (read by `stack.sh status`): state=running|backoff|stopped|gave-up, child=<pid>, restarts=<n in total>,
# recent=<n within the window>, last_exit=<why the last start ended>, updated=<UTC time>.
# Settings (env): RESTART_LIMIT (5), RESTART_WINDOW (600 s), RESTART_BACKOFF_MAX (30 s), RESTART_STABLE_AFTER (60 s).
set -u
name="$1" state_file="$2"
shift 2
limit="${RESTART_LIMIT:-5}" window="${RESTART_WINDOW:-600}"
backoff_max="${RESTART_BACKOFF_MAX:-30}" stable_after="${RESTART_STABLE_AFTER:-60}"

stopping="" child="" pause="" restarts=0 last_exit="" backoff=1
recent=() # epoch seconds of the restarts within the window

now_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }
say() { printf '=== %s supervisor: %s\n' "$(now_utc)" "$*"; }
write_state() {
  printf 'state=%s\nchild=%s\nrestarts=%s\nrecent=%s\nlast_exit=%s\nupdated=%s\n' \
    "$1" "$child" "$restarts" "${#recent[@]}" "$last_exit" "$(now_utc)" >"$state_file.tmp" &&
    mv -f "$state_file.tmp" "$state_file"
}
on_stop() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
  [ -n "$pause" ] && kill "$pause" 2>/dev/null
}
trap on_stop TERM INT

while :; do
  started=$SECONDS
  "$@" &
  child=$!
  write_state running
  # `wait` returns early when a trapped signal arrives: wait again until the command has really ended.
  while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=""
  if [ -n "$stopping" ]; then
    write_state stopped
    exit 0
  fi
  ran=$((SECONDS - started))
  if [ "$rc" -gt 128 ]; then last_exit="signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else last_exit="exit code $rc"; fi
  [ "$ran" -ge "$stable_after" ] && backoff=1
  now=$(date +%s) kept=()
  for t in "${recent[@]+"${recent[@]}"}"; do [ $((now - t)) -lt "$window" ] && kept+=("$t"); done
  recent=("${kept[@]+"${kept[@]}"}")
  if [ "${#recent[@]}" -ge "$limit" ]; then
    say "$name ended ($last_exit after ${ran} s); gave up after $limit restarts within ${window} s (start it again with 'scripts/stack.sh restart $name')"
    write_state gave-up
    exit 1
  fi
  recent+=("$now")
  restarts=$((restarts + 1))
  say "$name ended ($last_exit after ${ran} s); restart $restarts (${#recent[@]} of at most $limit within ${window} s) in ${backoff} s"
  write_state backoff
  sleep "$backoff" &
  pause=$!
  wait "$pause" 2>/dev/null
  pause=""
  if [ -n "$stopping" ]; then
    write_state stopped
    exit 0
  fi
  backoff=$((backoff * 2))
  [ "$backoff" -gt "$backoff_max" ] && backoff="$backoff_max"
done
