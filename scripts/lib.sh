# Shared helpers for the scripts in scripts/ (sourced, not run):
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sourcing it moves to the repository root ($ROOT) and installs one EXIT trap that runs every
# command registered with on_exit, last registered first.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

# ---- cleanup on exit ----
_LIB_ON_EXIT=()
# on_exit COMMAND: run COMMAND (a string, evaluated) when the script exits, however it exits.
on_exit() { _LIB_ON_EXIT+=("$1"); }
_lib_run_on_exit() {
  local i
  for ((i = ${#_LIB_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${_LIB_ON_EXIT[i]}" || true; done
}
trap _lib_run_on_exit EXIT

# ---- temporary files and directories (removed on exit) ----
# temp_dir NAME: prints a new directory under $TMPDIR (or /tmp), removed when the script exits.
# Use as: DIR="$(temp_dir smoke)"; then register_temp "$DIR" (a command substitution is a subshell,
# so the registration must happen in the script itself).
temp_dir() { mktemp -d "${TMPDIR:-/tmp}/rerum-$1.XXXXXX"; }
# temp_file NAME: a new empty file, like temp_dir.
temp_file() { mktemp "${TMPDIR:-/tmp}/rerum-$1.XXXXXX"; }
# register_temp PATH…: remove these paths when the script exits.
register_temp() {
  local p
  for p in "$@"; do on_exit "rm -rf -- $(printf '%q' "$p")"; done
}

# ---- checks ----
# require_cmd NAME [HINT]: stop (exit 2) with a clear message when a command is missing.
require_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "$(basename "$0"): '$1' is required but not installed${2:+ ($2)}" >&2
  exit 2
}

# ---- ports ----
# free_port: prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
