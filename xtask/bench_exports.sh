#!/usr/bin/env bash
# xtask/bench_exports.sh: the S3 export path against a local file, with the release `ratecard`.
#
# Usage: bash xtask/bench_exports.sh [BYTES]      (default 1000000000: the 1 GB benchmark export)
#
# Generates the benchmark's canonical CSV (rater bench `gen-csv`, 1,000 accounts), starts a local
# S3 (moto, installed by .ci/install), uploads the export plain and gzip-compressed, then rates
# each with `/usr/bin/time -v` into a fresh embedded store: the local file, the plain object
# (`s3://`), the gzip object. Prints wall time, records/s and peak memory (max RSS) of each.
# Moto serves from its own process on this machine, so the S3 figures include its Python
# overhead (an upper bound of what S3 costs; see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bytes="${1:-1000000000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ratecard-bench-exports.XXXXXX")"
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q --release -p rater --bin ratecard
cargo bench -q -p rater --bench rater -- gen-csv "$work/bench.csv" "$bytes" 2>&1 | tail -1
gzip -1 -c "$work/bench.csv" >"$work/bench.csv.gz"
ls -l "$work/bench.csv" "$work/bench.csv.gz" | awk '{print $5, $9}'

moto="${RATECARD_CACHE:-$HOME/.cache/ratecard}/venvs/moto-5.2.5/bin/moto_server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
auth='Authorization: AWS4-HMAC-SHA256 Credential=local/20170215/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0'
curl -s -f -X PUT -H "$auth" "http://127.0.0.1:$port/bench-exports" -o /dev/null
for f in bench.csv bench.csv.gz; do
  curl -s -f -T "$work/$f" -H "$auth" "http://127.0.0.1:$port/bench-exports/exports/$f" -o /dev/null
done

export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
run() {
  local name="$1" source="$2"
  local store="$work/store-$name"
  /usr/bin/time -v target/release/ratecard rate "$source" \
    --catalog examples/catalogs/cloudstack.json --accounts "$work/bench.csv.accounts.json" \
    --store "embedded:$store" --output json >"$work/$name.json" 2>"$work/$name.time"
  local wall rss records
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/$name.time")
  records=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$work/$name.json")
  printf '%-10s records %s  wall %s  peak memory %s MiB\n' "$name" "$records" "$wall" "$rss"
}
# How fast the local S3 itself serves the plain object (one GET, to /dev/null): the floor of
# the plain s3 run on this machine.
curl -s -f -H "$auth" "http://127.0.0.1:$port/bench-exports/exports/bench.csv" -o /dev/null \
  -w 'moto serves the plain object at %{speed_download} B/s (%{time_total} s)\n'
# Moto answers a ranged GET by reading the whole object first, so each 8 MiB range of the
# plain object costs about as much as a full GET: the plain s3 run measures moto, not S3.
curl -s -f -H "$auth" -r 0-8388607 "http://127.0.0.1:$port/bench-exports/exports/bench.csv" -o /dev/null \
  -w 'moto serves one 8 MiB range in %{time_total} s\n'
run file "$work/bench.csv"
run s3 "s3://bench-exports/exports/bench.csv"
run s3-gzip "s3://bench-exports/exports/bench.csv.gz"
