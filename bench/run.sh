#!/usr/bin/env bash
# run.sh runs the token benchmarks of this module and writes:
#
#   results/verify.txt     raw `go test -bench` output of BenchmarkVerify
#   results/sign.txt       raw `go test -bench` output of BenchmarkSign
#   results/benchstat.txt  benchstat of both
#   results/summary.md     medians per algorithm × implementation, ratios
#                          against raw from the same run, and the machine
#
# Every benchmark gets COUNT samples, as with `go test -count COUNT`, but
# taken in COUNT interleaved rounds of -count 1 (Verify, then Sign, then
# again) rather than COUNT back to back: on a shared machine a burst of
# other work then spreads over all implementations instead of spoiling
# every sample of one of them, and the medians stay comparable.
#
# Environment: COUNT (samples per benchmark, default 6), BENCHTIME
# (default 700ms: about 3.5 minutes in all on 2 cores), CPU (GOMAXPROCS of
# the benchmarks, default 1: per-core figures, GC included), BENCH (a
# sub-benchmark regexp such as EdDSA, default all).
set -euo pipefail

cd "$(dirname "$0")"
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-700ms}
CPU=${CPU:-1}
BENCH=${BENCH:-.}
OUT=results

PATH="$(go env GOPATH)/bin:$PATH"
export PATH
if ! command -v benchstat >/dev/null 2>&1; then
	echo "installing benchstat" >&2
	go install golang.org/x/perf/cmd/benchstat@latest
fi

mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

date=$(date -u '+%Y-%m-%d %H:%M UTC')
goversion=$(go env GOVERSION)
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1 | sed 's/[[:space:]]*$//')
cpu="$cpu, $(nproc) cores"
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
flags="$COUNT interleaved rounds of -count 1 -benchtime $BENCHTIME -cpu $CPU"
echo "load average at start: $load_start" >&2

# The implementations must validate before anyone times them.
go test -count=1 -run 'TestVerifiersValidate|TestSignersIssueLatchTokens' .
go test -c -o "$tmp/bench.test" .

loads=()
: >"$OUT/verify.txt"
: >"$OUT/sign.txt"
for round in $(seq "$COUNT"); do
	loads+=("$(cut -d ' ' -f 1 /proc/loadavg)")
	for family in Verify Sign; do
		echo "round $round/$COUNT: Benchmark$family" >&2
		out="$OUT/$(tr '[:upper:]' '[:lower:]' <<<"$family").txt"
		"$tmp/bench.test" -test.run '^$' -test.bench "^Benchmark$family\$/$BENCH" \
			-test.count 1 -test.benchtime "$BENCHTIME" -test.cpu "$CPU" \
			-test.timeout 30m | tee -a "$out"
	done
done

load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "load average at end: $load_end" >&2
gocpu=$(sed -n 's/^cpu: *//p' "$OUT/verify.txt" | head -n 1 | sed 's/[[:space:]]*$//')
if [ -n "$gocpu" ]; then
	cpu="$cpu (Go reports: $gocpu)"
fi

{
	echo "# benchstat $OUT/verify.txt"
	benchstat "$OUT/verify.txt"
	echo
	echo "# benchstat $OUT/sign.txt"
	benchstat "$OUT/sign.txt"
} >"$OUT/benchstat.txt"

go run ./cmd/summarize \
	-date "$date" -go "$goversion" -cpu "$cpu" \
	-load-start "$load_start" -load-rounds "${loads[*]}" -load-end "$load_end" -flags "$flags" \
	"$OUT/verify.txt" "$OUT/sign.txt" >"$OUT/summary.md"
echo "wrote $OUT/verify.txt, $OUT/sign.txt, $OUT/benchstat.txt and $OUT/summary.md" >&2
