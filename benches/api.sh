#!/usr/bin/env bash
# Benchmark: the JSON API (`earmark serve`) under load, with the project's own client
# (benches/api_load.rs, run by `cargo bench --bench api_load`).
#
#   benches/api.sh [sqlite | postgres URL]     (default sqlite: a file in a temporary folder;
#                                               postgres: a fresh database `earmark_api_bench` is
#                                               made on the server URL names)
#
# Environment (all optional):
#   PEOPLE=50000 UNITS=50   the roster: former teachers (MBDK) spread over UNITS disbursing units in
#                           Shantou's five counties, each owed 800.00 or 900.00 a month
#   CLIENTS=32              concurrent clients in the payment phases
#   DURATION=10             seconds per timed phase
#   RUNS=3                  repetitions of every phase (the table shows the medians)
#   BATCH=50                lines per request in the batched payment phase
#   TRACE_CLIENTS=8         trace clients running beside the payment clients in the mixed phase
#   EARMARK_BENCH_KEEP=1    keep the folder (ledger, server log) for a look afterwards
#   EARMARK_BIN=PATH        measure this server binary instead of building target/release/earmark
#   EARMARK_BENCH_CLIENT=PATH   run this client executable instead of `cargo bench --bench api_load`
#
# Steps: build the release binary and the client; make a fresh ledger; generate and import the
# roster; release (province, city), match and disburse all twelve months of 2025 to the units, so
# every unit holds exactly what its people are owed and nobody has been paid; add one unit user (and
# token) per unit and an admin with the personal-data right; start the server on a free loopback port.
# The client then lists each unit's people through the API and runs, RUNS times each:
#
#   1. payments, 1 line per request, CLIENTS clients (each with its unit's token);
#   2. payments, BATCH lines per request, CLIENTS clients;
#   3. traces of random people, one client, then CLIENTS clients;
#   4. payments (BATCH lines) with TRACE_CLIENTS trace clients beside them.
#
# Every person-month is handed out to one request only. Each payment line posts one entry
# (payment 发放, two posting rows). At the end the client replays a sample of the
# answered requests (they must all come back `already`, nothing paid twice), compares every unit's
# held balance with what was disbursed minus what the server answered as paid, and runs /check and
# /verify; this script then stops the server and runs `earmark check`, `earmark verify`, and its own
# comparison of the ledger's balances (from the CLI) before and after, per unit and per person.
#
# Target (issue 7): at least 2,000 payout postings per second through the API with 32 concurrent
# clients on SQLite, and a trace's 95th-percentile latency under 50 ms. Figures vary with the
# machine's load: run it more than once before drawing conclusions.
set -euo pipefail

BACKEND="${1:-sqlite}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEOPLE="${PEOPLE:-50000}"
UNITS="${UNITS:-50}"
CLIENTS="${CLIENTS:-32}"
DURATION="${DURATION:-10}"
RUNS="${RUNS:-3}"
BATCH="${BATCH:-50}"
TRACE_CLIENTS="${TRACE_CLIENTS:-8}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/earmark-api-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -z "${EARMARK_BENCH_KEEP:-}" ]]; then
        rm -rf "$WORK"
        if [[ -n "${URL:-}" ]]; then
            PGOPTIONS="--client-min-messages=warning" psql "$URL" -qc \
                "DROP DATABASE IF EXISTS earmark_api_bench WITH (FORCE)" >/dev/null || true
        fi
    else
        echo "== kept $WORK"
    fi
}
trap cleanup EXIT

case "$BACKEND" in
    sqlite)
        DB="$WORK/ledger.db"
        ;;
    postgres)
        URL="${2:?usage: benches/api.sh postgres postgres://USER@HOST:PORT/DB}"
        BASE="${URL%/*}"
        PGOPTIONS="--client-min-messages=warning" psql "$URL" -qc "DROP DATABASE IF EXISTS earmark_api_bench WITH (FORCE)" \
            -c "CREATE DATABASE earmark_api_bench" >/dev/null
        DB="$BASE/earmark_api_bench"
        ;;
    *)
        echo "usage: benches/api.sh [sqlite | postgres URL]" >&2
        exit 2
        ;;
esac

if [[ -z "${EARMARK_BIN:-}" ]]; then
    echo "== building release (the server)"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
fi
E="${EARMARK_BIN:-$ROOT/target/release/earmark}"
if [[ -n "${EARMARK_BENCH_CLIENT:-}" ]]; then
    CLIENT=("$EARMARK_BENCH_CLIENT")
else
    echo "== building the bench client (cargo bench --bench api_load)"
    cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench api_load --no-run
    CLIENT=(cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench api_load --)
fi

"$E" --db "$DB" init >/dev/null

echo "== generating $PEOPLE people in $UNITS units"
python3 - "$WORK" "$PEOPLE" "$UNITS" <<'PY'
import datetime, sys

work, people, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
COUNTIES = ["440507", "440511", "440512", "440513", "440514"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"

def make_id(region, birth, seq):
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]

unit_rows = []
with open(f"{work}/units.csv", "w", encoding="utf-8") as f:
    f.write("unit_code,name,county_code,township_code,kind\n")
    for u in range(units):
        county = COUNTIES[u % len(COUNTIES)]
        code = f"U{county}{u:03d}"
        unit_rows.append((code, county))
        f.write(f"{code},汕头市第{u + 1}发放单位,{county},,school\n")
with open(f"{work}/units.list", "w") as f:
    f.write("".join(f"{code}\n" for code, _ in unit_rows))

SURNAMES = "陈林黄张李王吴刘蔡郑杨许"
GIVEN = ["伟", "芳", "秀英", "建国", "丽华", "志强", "淑珍", "海生", "桂兰", "德明"]
base = datetime.date(1930, 1, 1)
with open(f"{work}/roster.csv", "w", encoding="utf-8") as f, open(f"{work}/people.csv", "w") as p:
    f.write("id_number,name,sex,birth_date,semesters,county_code,township_code,unit_code,bank_account\n")
    for i in range(people):
        code, county = unit_rows[i % units]
        male = i % 2 == 0
        # Born 1930-1953: past 60 (men) and 55 (women) before the 2018-12-31 cutoff.
        birth = base + datetime.timedelta(days=(i * 7919) % 8700)
        seq = (i // 8700) * 2 + (1 if male else 0)
        assert seq <= 999, "too many people for this generator"
        semesters = 40 + i % 40   # 20-39 years: 800.00 or 900.00 a month
        pid = make_id(county, birth, seq)
        f.write(
            f"{pid},{SURNAMES[i % 12]}{GIVEN[i % 10]},{'男' if male else '女'},"
            f"{birth:%Y-%m-%d},{semesters},{county},,{code},6222{i:012d}\n"
        )
        p.write(f"{pid},{code}\n")
PY

"$E" --db "$DB" import units "$WORK/units.csv" >/dev/null
echo "== importing the roster"
"$E" --db "$DB" import roster --program MBDK "$WORK/roster.csv" | tail -1

echo "== releasing, matching and disbursing 2025-01..2025-12 (nothing paid yet)"
COVERS=2025-01..2025-12
"$E" --db "$DB" allocate --program MBDK --level province --document "粤财教〔2025〕1号" \
    --date 2025-01-02 --covers "$COVERS" | tail -1
"$E" --db "$DB" allocate --program MBDK --level city --document "汕财教〔2025〕1号" \
    --date 2025-01-02 --covers "$COVERS" | tail -1
"$E" --db "$DB" match --program MBDK --document "县财配〔2025〕1号" \
    --date 2025-01-03 --covers "$COVERS" | tail -1
for county in 440507 440511 440512 440513 440514; do
    "$E" --db "$DB" disburse --program MBDK --county "$county" \
        --document "${county}财拨〔2025〕1号" --date 2025-01-06 --covers "$COVERS" | tail -1
done
"$E" --db "$DB" balances --program MBDK --format json >"$WORK/before.json"

echo "== users: one unit user per unit, and an admin with the personal-data right"
"$E" --db "$DB" user add bench-admin --role admin --scope '*' --personal-data >/dev/null
ADMIN_TOKEN="$("$E" --db "$DB" user token bench-admin 2>/dev/null)"
: >"$WORK/tokens.csv"
while read -r unit; do
    "$E" --db "$DB" user add "bench-$unit" --role unit --scope "$unit" >/dev/null
    echo "$unit,$("$E" --db "$DB" user token "bench-$unit" 2>/dev/null)" >>"$WORK/tokens.csv"
done <"$WORK/units.list"
chmod 600 "$WORK/tokens.csv"

echo "== starting the server"
"$E" --db "$DB" serve --addr 127.0.0.1:0 --out "$WORK/bank" --sweep-every-hours 0 \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
BASE_URL=""
for _ in $(seq 1 100); do
    BASE_URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/serve.out" | head -1 || true)"
    [[ -n "$BASE_URL" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; exit 3; }
    sleep 0.1
done
[[ -n "$BASE_URL" ]] || { echo "error: the server did not say where it listens" >&2; exit 3; }
echo "   $(head -1 "$WORK/serve.out") (pid $SERVER_PID)"

echo "== load ($CLIENTS clients, $RUNS runs x ${DURATION} s per phase)"
set +e
EARMARK_BENCH_TOKEN="$ADMIN_TOKEN" "${CLIENT[@]}" \
    --url "$BASE_URL" --units "$WORK/tokens.csv" --program MBDK --months 2025-01..2025-12 \
    --date 2025-12-20 --clients "$CLIENTS" --duration "$DURATION" --runs "$RUNS" \
    --batch "$BATCH" --trace-clients "$TRACE_CLIENTS" --server-pid "$SERVER_PID" \
    --backend "$BACKEND" | tee "$WORK/client.out"
client_rc=${PIPESTATUS[0]}
set -e

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
server_errors=$(grep -c 'ERROR' "$WORK/serve.err" || true)
echo "server log: $server_errors ERROR line(s)"
if [[ "$server_errors" -gt 0 ]]; then
    grep 'ERROR' "$WORK/serve.err" | sort | uniq -c | sort -rn | head -5
fi

echo "== the books, after the server stopped"
ok=1
"$E" --db "$DB" check | tail -1 || ok=0
"$E" --db "$DB" verify | tail -1 || ok=0
"$E" --db "$DB" balances --program MBDK --format json >"$WORK/after.json"
python3 - "$WORK" <<'PY' || ok=0
import json, sys
from collections import defaultdict

work = sys.argv[1]
unit_of = dict(line.strip().split(",") for line in open(f"{work}/people.csv"))
units = {line.strip() for line in open(f"{work}/units.list")}

def read(name):
    out = defaultdict(int)
    for row in json.load(open(f"{work}/{name}")):
        out[(row["owner"], row["kind"])] += row["balance_fen"]
    return out

before, after = read("before.json"), read("after.json")
paid = defaultdict(int)      # per unit: what its people were paid in this run, from their accounts
for (owner, kind), fen in after.items():
    if kind == "paid" and owner in unit_of:
        paid[unit_of[owner]] += fen - before.get((owner, kind), 0)
bad = []
for unit in sorted(units):
    disbursed = before.get((unit, "held"), 0)
    held = after.get((unit, "held"), 0)
    if held != disbursed - paid[unit]:
        bad.append(f"{unit}: held {held} fen, expected {disbursed} disbursed - {paid[unit]} paid")
    if held < 0:
        bad.append(f"{unit}: held {held} fen is overdrawn")
# Each person-month is paid at most once: nobody was paid more than twelve months' 900.00.
over = [o for (o, k), fen in after.items() if k == "paid" and o in unit_of and fen > 12 * 90000]
payable = sum(fen for (o, k), fen in after.items() if k == "payable" and o in unit_of)
total = sum(paid.values())
print(f"ledger (CLI balances): {total / 100:,.2f} yuan paid to people in this run; "
      f"every unit's held = disbursed - paid: {'OK' if not bad else 'FAILED'}; "
      f"people paid over 12 months: {len(over)}; people's payable left: {payable} fen")
for line in bad[:10]:
    print("   ", line)
sys.exit(0 if not bad and not over and payable == 0 else 1)
PY

if [[ "$client_rc" -ne 0 || "$ok" -ne 1 ]]; then
    echo "FAILED: client exit $client_rc, books ok=$ok" >&2
    exit 1
fi
echo "OK"
