#!/bin/sh
# Run each libFuzzer harness for a few seconds on a copy of its seed
# corpus: a quick check for CI, not a substitute for long runs.
#
# usage: smoke.sh SECONDS HARNESS...
# A harness that crashes makes the script fail; the input that crashed it
# is copied to ./fuzz-artifacts/ so CI can keep it.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 SECONDS HARNESS..." >&2
	exit 2
fi
secs=$1
shift
corpus=$(cd "$(dirname "$0")" && pwd)/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for h in "$@"; do
	name=$(basename "$h")
	name=${name#fuzz_}
	mkdir -p "$tmp/$name" "$tmp/art-$name"
	if [ -d "$corpus/$name" ]; then
		cp "$corpus/$name"/* "$tmp/$name/"
	fi
	dict=
	if [ -f "$corpus/../$name.dict" ]; then
		dict=-dict="$corpus/../$name.dict"
	fi
	if "$h" -max_total_time="$secs" -print_final_stats=1 $dict \
	    -artifact_prefix="$tmp/art-$name/" "$tmp/$name" \
	    >"$tmp/$name.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		    "$tmp/$name.log")
		cov=$(grep -o 'cov: [0-9]*' "$tmp/$name.log" | tail -n 1)
		echo "fuzz_$name: ok, ${runs:-?} runs, ${cov:-cov: ?}"
	else
		echo "fuzz_$name: FAILED" >&2
		tail -n 40 "$tmp/$name.log" >&2
		mkdir -p fuzz-artifacts
		cp "$tmp/art-$name"/* fuzz-artifacts/ 2>/dev/null || true
		status=1
	fi
done
exit $status
