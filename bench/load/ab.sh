#!/usr/bin/env bash
# ab.sh compares latch binaries on the SQLite refresh run of the load
# benchmark, in interleaved rounds: each round runs every binary once, back
# to back (A, B, A, B, …), so that a burst of other work on a shared machine
# spoils one sample of each rather than every sample of one. It prints each
# run's summary line and then, per binary and worker count, the medians over
# the rounds of req/s, req per latch-CPU-s, p50 and p99.
#
#   go build -o /tmp/latch-a ./cmd/latch           # at the baseline commit
#   go build -o /tmp/latch-b ./cmd/latch           # with the change
#   bench/load/ab.sh /tmp/latch-a /tmp/latch-b
#
# Environment: ROUNDS (default 5), WORKERS (default 16,64), DURATION
# (measured time of each run, default 8s), WARMUP (default 2s), OUT (where
# each run's load.md and load-sqlite.txt go, default a temporary directory).
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
WORKERS=${WORKERS:-16,64}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ $# -lt 1 ]; then
	echo "usage: $0 BINARY..." >&2
	exit 2
fi

load=$(mktemp)
trap 'rm -f "$load"' EXIT
go build -o "$load" ./load

lines=()
for round in $(seq "$ROUNDS"); do
	for bin in "$@"; do
		name=$(basename "$bin")
		dir="$OUT/$name-$round"
		"$load" -bin "$bin" -topologies sqlite -scenarios refresh -workers "$WORKERS" \
			-duration "$DURATION" -warmup "$WARMUP" -pause 1s -out "$dir" >"$dir.log" 2>&1
		while read -r l; do
			echo "$name round $round: $l"
			lines+=("$name $l")
		done < <(grep 'refresh  ' "$dir.log" | sed 's/^[0-9:]*  *//')
	done
done

echo
echo "medians over $ROUNDS rounds (load average now: $(cut -d ' ' -f 1-3 /proc/loadavg))"
printf '%s\n' "${lines[@]}" | awk '
	{
		key = $1 " " $4
		for (i = 1; i <= NF; i++) {
			if ($(i) == "req/s") rps[key] = rps[key] " " $(i-1)
			if ($(i) == "req/latch-CPU-s") cpu[key] = cpu[key] " " $(i-1)
			if ($(i) == "p50") p50[key] = p50[key] " " $(i+1)
			if ($(i) == "p99") p99[key] = p99[key] " " $(i+1)
		}
		keys[key] = 1
	}
	function median(s,    a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		for (k in keys) printf "%-24s req/s %6.0f   req/latch-CPU-s %6.0f   p50 %6.2f ms   p99 %6.1f ms\n", k, median(rps[k]), median(cpu[k]), median(p50[k]), median(p99[k])
	}' | sort
