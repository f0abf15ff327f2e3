#!/usr/bin/env bash
# Benchmark: a province-sized MBDK roster and one year of entitlements.
#
#   benches/entitlements.sh [PEOPLE]      (default 200000)
#
# Builds the release binary, makes a fresh SQLite ledger in a temporary folder, generates a roster of
# PEOPLE former teachers with valid ID numbers spread over Guangdong's counties (ages 55-85 in 2024,
# 2-70 semesters), loads a copy of programs/mbdk.toml with a 1-9 year rate for every city (so nobody
# is refused), imports the roster, and times
#   earmark entitlements --program MBDK --from 2024-01 --to 2024-12 --format csv --out FILE
# with /usr/bin/time -v (wall time, peak RSS). Target: under 10 s and under 1 GiB.
# Figures vary with the machine's load: run it more than once before drawing conclusions.
set -euo pipefail

PEOPLE="${1:-200000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/earmark-bench.XXXXXX")"
# EARMARK_BENCH_KEEP=1 keeps the folder (ledger, roster, output) for profiling.
if [[ -z "${EARMARK_BENCH_KEEP:-}" ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "== keeping $WORK"
fi

echo "== building release"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
EARMARK="$ROOT/target/release/earmark"
DB="$WORK/ledger.db"

"$EARMARK" --db "$DB" init >/dev/null

echo "== generating $PEOPLE people"
python3 - "$ROOT/src/reference/guangdong_regions.csv" "$ROOT/programs/mbdk.toml" \
    "$WORK/roster.csv" "$WORK/mbdk_all_cities.toml" "$PEOPLE" <<'PY'
import csv, random, sys, datetime

regions_csv, mbdk_toml, roster_out, program_out, people = sys.argv[1:6]
people = int(people)
random.seed(20240101)

counties, cities = [], []
with open(regions_csv, encoding="utf-8") as f:
    for row in csv.DictReader(f):
        if row["level"] == "county":
            counties.append(row["code"])
        elif row["level"] == "city":
            cities.append(row["code"])
# Dongguan and Zhongshan have no counties: they play the county's role themselves.
counties += [c for c in ("441900", "442000") if c in cities]

# A 1-9 year rate for every city, so every person can be priced.
text = open(mbdk_toml, encoding="utf-8").read()
rates = "".join(f'"{c}" = "{random.choice(["300.00", "400.00", "500.00"])}"\n' for c in cities)
assert "\n[city_rates]\n" in text
open(program_out, "w", encoding="utf-8").write(text.replace("\n[city_rates]\n", "\n[city_rates]\n" + rates))

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"

def make_id(region, birth, seq):
    first = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first + CHECK[sum(int(d) * w for d, w in zip(first, WEIGHTS)) % 11]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红"
used = set()
start = datetime.date(1939, 1, 1)
span = (datetime.date(1969, 12, 31) - start).days  # ages 55-85 in 2024
with open(roster_out, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id_number", "name", "sex", "birth_date", "semesters", "county_code"])
    n = 0
    while n < people:
        county = random.choice(counties)
        birth = start + datetime.timedelta(days=random.randrange(span + 1))
        male = random.random() < 0.5
        seq = random.randrange(0, 500) * 2 + (1 if male else 0)
        key = (county, birth, seq)
        if key in used:
            continue
        used.add(key)
        name = random.choice(SURNAMES) + random.choice(GIVEN) + random.choice(GIVEN)
        w.writerow([make_id(county, birth, seq), name, "M" if male else "F",
                    birth.isoformat(), random.randint(2, 70), county])
        n += 1
PY
echo "   $(($(wc -l <"$WORK/roster.csv") - 1)) rows, $(du -h "$WORK/roster.csv" | cut -f1)"

"$EARMARK" --db "$DB" program load "$WORK/mbdk_all_cities.toml" >/dev/null

# Runs a command under /usr/bin/time -v; prints its output and sets WALL (s) and RSS_MIB.
measure() {
    local log="$WORK/time.log"
    /usr/bin/time -v -o "$log" "$@"
    local wall
    wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")"
    WALL="$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$wall")"
    RSS_MIB="$(awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$log")"
}

echo "== importing the roster"
measure "$EARMARK" --db "$DB" import roster --program MBDK "$WORK/roster.csv"
IMPORT_WALL="$WALL"
IMPORT_RSS="$RSS_MIB"

echo "== computing entitlements 2024-01..2024-12"
OUT="$WORK/entitlements.csv"
measure "$EARMARK" --db "$DB" entitlements --program MBDK --from 2024-01 --to 2024-12 \
    --format csv --out "$OUT"
ROWS="$(($(wc -l <"$OUT") - 1))"

echo
echo "== results ($PEOPLE people, SQLite, $(nproc) CPUs; a shared machine is noisy)"
printf '  import roster:  %8s s   max RSS %8s MiB\n' "$IMPORT_WALL" "$IMPORT_RSS"
printf '  entitlements:   %8s s   max RSS %8s MiB   %s rows written (%s)\n' \
    "$WALL" "$RSS_MIB" "$ROWS" "$(du -h "$OUT" | cut -f1)"
VERDICT="$(awk -v t="$WALL" -v m="$RSS_MIB" 'BEGIN { print (t < 10 && m < 1024) ? "within" : "OUTSIDE" }')"
echo "  target (entitlements < 10 s and < 1024 MiB): $VERDICT"
