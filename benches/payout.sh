#!/usr/bin/env bash
# Benchmark: one payout month for a large MBDK roster.
#
#   benches/payout.sh [PEOPLE] [UNITS]      (defaults 200000 people, 50 units)
#
# Builds the release binary, makes a fresh SQLite ledger in a temporary folder, registers UNITS
# disbursing units spread over Shantou's counties (440507, 440511, 440512, 440513, 440514), generates
# PEOPLE former teachers with valid ID numbers, all with 20 or more semesters and past the age before
# the 2018 cutoff (so everyone is owed 800.00 or 900.00 and nobody needs a city rate), imports them,
# releases (province, city), matches and disburses 2025-01, and then times the payout month:
#
#   1. `earmark payout create` for every unit (screen, one pending payment entry per line, bank file);
#   2. the bank's answer files are written (1% of the lines failed, not timed);
#   3. `earmark payout result` for every answer file (post the paid lines, void the failed ones).
#
# Each timed phase runs under /usr/bin/time -v: the wall time, and the peak RSS of the largest
# process. Target for the whole payout month (1 + 3): under 30 s and under 1 GiB.
# Figures vary with the machine's load: run it more than once before drawing conclusions.
# EARMARK_BENCH_KEEP=1 keeps the folder (ledger, files) for profiling, with the ledger as it was before
# the payout month in before.db (and before.db-wal).
set -euo pipefail

PEOPLE="${1:-200000}"
UNITS="${2:-50}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/earmark-payout-bench.XXXXXX")"
if [[ -z "${EARMARK_BENCH_KEEP:-}" ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "== keeping $WORK"
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time is needed (apt-get install time)" >&2
    exit 3
fi

echo "== building release"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
EARMARK="$ROOT/target/release/earmark"
DB="$WORK/ledger.db"
export EARMARK_BIN="$EARMARK" EARMARK_DB="$DB"

"$EARMARK" --db "$DB" init >/dev/null

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
with open(f"{work}/roster.csv", "w", encoding="utf-8") as f:
    f.write("id_number,name,sex,birth_date,semesters,county_code,township_code,unit_code,bank_account\n")
    for i in range(people):
        code, county = unit_rows[i % units]
        male = i % 2 == 0
        # Born 1930-1953: past 60 (men) and 55 (women) before the 2018-12-31 cutoff.
        birth = base + datetime.timedelta(days=(i * 7919) % 8700)
        # Same birth date only 8,700 people apart: the sequence number tells them apart.
        seq = (i // 8700) * 2 + (1 if male else 0)
        assert seq <= 999, "too many people for this generator"
        semesters = 40 + i % 40   # 20-39 years: 800.00 or 900.00
        f.write(
            f"{make_id(county, birth, seq)},{SURNAMES[i % 12]}{GIVEN[i % 10]},{'男' if male else '女'},"
            f"{birth:%Y-%m-%d},{semesters},{county},,{code},6222{i:012d}\n"
        )
PY

"$EARMARK" --db "$DB" import units "$WORK/units.csv" >/dev/null
echo "== importing the roster"
/usr/bin/time -f "   roster import: %e s, %M KiB" \
    "$EARMARK" --db "$DB" import roster --program MBDK "$WORK/roster.csv" | tail -1

echo "== releasing, matching and disbursing 2025-01"
"$EARMARK" --db "$DB" allocate --program MBDK --level province --document "粤财教〔2025〕1号" \
    --date 2025-01-02 --covers 2025-01..2025-01 | tail -1
"$EARMARK" --db "$DB" allocate --program MBDK --level city --document "汕财教〔2025〕1号" \
    --date 2025-01-02 --covers 2025-01..2025-01 | tail -1
"$EARMARK" --db "$DB" match --program MBDK --document "县财配〔2025〕1号" \
    --date 2025-01-03 --covers 2025-01..2025-01 | tail -1
for county in 440507 440511 440512 440513 440514; do
    "$EARMARK" --db "$DB" disburse --program MBDK --county "$county" \
        --document "${county}财拨〔2025〕1号" --date 2025-01-06 --covers 2025-01..2025-01 | tail -1
done

mkdir -p "$WORK/bank" "$WORK/answers"
if [[ -n "${EARMARK_BENCH_KEEP:-}" ]]; then
    # The ledger as it stands before the payout month, for profiling one unit's batch again.
    for f in "$DB" "$DB-wal"; do
        if [[ -f "$f" ]]; then cp "$f" "$WORK/before.${f##*.}"; fi
    done
fi

# Phase 1: a batch and its bank file for every unit.
cat >"$WORK/create.sh" <<'SH'
set -euo pipefail
while read -r unit; do
    "$EARMARK_BIN" --db "$EARMARK_DB" payout create --unit "$unit" --program MBDK --month 2025-01 \
        --date 2025-01-08 --format csv --out "$BENCH_WORK/bank" | sed -n 1p
done <"$BENCH_WORK/units.list"
SH
echo "== payout create for $UNITS units"
BENCH_WORK="$WORK" /usr/bin/time -v -o "$WORK/create.time" bash "$WORK/create.sh" >"$WORK/create.log"
tail -2 "$WORK/create.log"

# The bank's answers: every 100th line failed (账户已销户), the rest paid.
python3 - "$WORK" <<'PY'
import glob, os, sys
work = sys.argv[1]
lines = failed = 0
for path in sorted(glob.glob(f"{work}/bank/*.csv")):
    rows = open(path, encoding="utf-8-sig").read().splitlines()[1:]
    out = ["batch_id,line_no,status,code,reason,amount"]
    for row in rows:
        cells = row.split(",")
        if cells[1] == "TOTAL":
            continue
        lines += 1
        if int(cells[1]) % 100 == 0:
            failed += 1
            out.append(f"{cells[0]},{cells[1]},failed,E02,账户已销户,{cells[4]}")
        else:
            out.append(f"{cells[0]},{cells[1]},paid,,,{cells[4]}")
    name = os.path.basename(path).replace(".csv", ".answer.csv")
    open(f"{work}/answers/{name}", "w", encoding="utf-8").write("\n".join(out) + "\n")
print(f"== bank answers: {lines} lines, {failed} failed ({100 * failed / max(lines, 1):.2f}%)")
PY

# Phase 3: read every answer.
cat >"$WORK/result.sh" <<'SH'
set -euo pipefail
for file in "$BENCH_WORK"/answers/*.answer.csv; do
    "$EARMARK_BIN" --db "$EARMARK_DB" payout result "$file" --date 2025-01-09 | sed -n 1p
done
SH
echo "== payout result for $UNITS answers"
BENCH_WORK="$WORK" /usr/bin/time -v -o "$WORK/result.time" bash "$WORK/result.sh" >"$WORK/result.log"
tail -2 "$WORK/result.log"

"$EARMARK" --db "$DB" check | tail -1

# Figures.
python3 - "$WORK/create.time" "$WORK/result.time" <<'PY'
import sys

def read(path):
    wall = rss = None
    for line in open(path):
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            t = line.rsplit(" ", 1)[1].split(":")
            wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(t)))
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(" ", 1)[1]) / 1024
    return wall, rss

c_wall, c_rss = read(sys.argv[1])
r_wall, r_rss = read(sys.argv[2])
total, peak = c_wall + r_wall, max(c_rss, r_rss)
print(f"payout create:  {c_wall:7.2f} s   peak {c_rss:7.1f} MiB")
print(f"payout result:  {r_wall:7.2f} s   peak {r_rss:7.1f} MiB")
print(f"payout month:   {total:7.2f} s   peak {peak:7.1f} MiB   (target < 30 s, < 1024 MiB): "
      + ("OK" if total < 30 and peak < 1024 else "OVER TARGET"))
PY
