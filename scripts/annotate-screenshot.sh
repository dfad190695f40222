#!/bin/sh
# The annotate view at 120x40 beside `perf annotate --stdio` for the same function over the
# same seconds: builds tests/data/annotate/hot.c with -O1 -g, runs it, records it with perf
# while perftop's screen (in tmux) annotates `hot`, and writes both to screenshots/.
# Needs root (BPF, perf), gcc, tmux. Usage: scripts/annotate-screenshot.sh [SECONDS]
set -eu
seconds=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/perftop-annotate-shot.XXXXXX)
trap 'tmux -L perftop-shot kill-server 2>/dev/null || true; kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -O1 -g -o "$work/hot" "$root/tests/data/annotate/hot.c"
"$work/hot" & pid=$!
tmux -L perftop-shot new-session -d -s shot -x 120 -y 40 \
    "cd $root && $root/.venv/bin/python -m perftop -p $pid"
wait_for() {  # until the screen shows $1 (the BPF program takes seconds to build)
    for _ in $(seq 120); do
        tmux -L perftop-shot capture-pane -p -t shot | grep -qF -- "$1" && return 0
        sleep 0.5
    done
    echo "never shown: $1" >&2
    exit 1
}
wait_for "[.]  hot"
tmux -L perftop-shot send-keys -t shot A  # the decaying accumulation: steadier shares
tmux -L perftop-shot send-keys -t shot Tab
wait_for "Call stacks: [.] hot"
tmux -L perftop-shot send-keys -t shot a
wait_for "Annotate [.] hot"
perf record -q -e cpu-clock -F 99 -p "$pid" -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1
mkdir -p "$root/screenshots"
tmux -L perftop-shot capture-pane -p -t shot > "$root/screenshots/annotate-120x40.txt"
perf annotate --stdio -i "$work/perf.data" hot 2>/dev/null \
    | sed "s|$work/||g" > "$root/screenshots/annotate-120x40.perf-annotate.txt"
tmux -L perftop-shot send-keys -t shot q
echo "screenshots/annotate-120x40.txt and screenshots/annotate-120x40.perf-annotate.txt written"
