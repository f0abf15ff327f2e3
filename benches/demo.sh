#!/usr/bin/env bash
# Benchmark: the demo province-year end to end, then the inspectors' queries on the ledger it made.
#
#   benches/demo.sh [SCALE] [DB]      SCALE: small | county | province (default county)
#                                     DB: a SQLite path (default: a temp file) or a postgres:// URL
#                                         naming a server; a fresh database is made on it
#   COUNTIES=N benches/demo.sh province   only the first N county books (30 make about 5 million
#                                         postings: the ledger issue 5's inspector targets are set on)
#
# Prints, each measured in this run: the demo's wall time and peak RSS; the ledger's size; the time of
# the province-wide reconciliation report, a 200-item spot check with its workpaper, one person's trace
# (median of 5), `earmark balances` and, on the exported journal, `hledger balance` (the same balances
# computed by a tool nobody here wrote). Targets (issues 5 and 6): province demo under 120 s on SQLite
# and 240 s on PostgreSQL, under 2 GiB; reconciliation under 5 s; spot check under 2 s; trace under 50 ms.
set -euo pipefail
SCALE="${1:-county}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/earmark-demo-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DB="${2:-$WORK/demo.db}"
if [[ "$DB" == postgres://* ]]; then
    BASE="${DB%/*}"
    psql "$DB" -qc "DROP DATABASE IF EXISTS earmark_demo_bench WITH (FORCE)" -c "CREATE DATABASE earmark_demo_bench" >/dev/null
    DB="$BASE/earmark_demo_bench"
fi
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
E="$ROOT/target/release/earmark"
cd "$WORK"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

LIMIT=()
if [[ -n "${COUNTIES:-}" ]]; then LIMIT=(--counties "$COUNTIES"); fi
/usr/bin/time -v "$E" --db "$DB" -v demo --scale "$SCALE" "${LIMIT[@]}" --out "$WORK/out" > demo.txt 2> time.txt
wall=$(grep "Elapsed (wall clock)" time.txt | awk '{print $NF}')
rss=$(grep "Maximum resident" time.txt | awk '{print int($NF/1024)}')
entries=$(grep -o 'check: OK ([0-9]* entries)' demo.txt | grep -o '[0-9]*')
postings=$("$E" --db "$DB" check | grep -o '[0-9]* postings' | head -1 || true)
echo "demo --scale $SCALE ${LIMIT[*]} on ${DB%%://*}: wall $wall, peak ${rss} MiB, ${entries} entries, ${postings}"
# SQLite's one writer is the floor: how much of the year's payouts the writer's turn was held.
turn=$(grep -o "the writer's turn was held [0-9.]* s of [0-9.]* s" time.txt || true)
if [[ -n "$turn" ]]; then
    held=$(awk '{print $6}' <<< "$turn"); year=$(awk '{print $9}' <<< "$turn")
    echo "payout year: $turn ($(awk -v h="$held" -v y="$year" 'BEGIN {printf "%.0f%%", 100 * h / y}'))"
fi
recon=$(ms "$E" --db "$DB" report reconciliation --format csv --out recon.csv)
echo "reconciliation (province-wide): ${recon} ms"
spot=$(ms "$E" --db "$DB" spot-check --program MBDK --period 2025-01..2025-12 --size 200 --seed 7 --out wp.xlsx)
echo "spot check, 200 items with trails and workpaper: ${spot} ms"
# A person to trace: the first payee of the first bank file (批量代发, GBK).
files=("$WORK"/out/bank/*MBDK*-1.txt)
first_file="${files[0]}"
id=$(iconv -f GBK -t UTF-8 < "$first_file" | sed -n 2p | cut -d'|' -f7)
times=()
for _ in 1 2 3 4 5; do times+=("$(ms "$E" --db "$DB" trace --person "$id")"); done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
echo "trace of one person (whole process, median of 5): ${median} ms"
bal=$(ms "$E" --db "$DB" balances --format csv)
"$E" --db "$DB" export ledger --out ledger.journal >/dev/null
hl=$(ms hledger -f ledger.journal balance --flat --no-total -O csv)
echo "balances: earmark ${bal} ms, hledger on the exported journal ${hl} ms"
