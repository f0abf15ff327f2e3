#!/usr/bin/env python3
"""The floor under the writer's turn: inserts a 30-county payout year's postings and claims into
the same SQLite schema and pragmas as earmark (WAL, synchronous NORMAL, 64 MiB cache), one
transaction per batch of 150-450 rows, with Python's sqlite3 `executemany` (each row a step in C,
no driver between). Usage: python3 benches/sqlite_rows.py [path]. Prints the seconds each took."""
import os, random, sqlite3, sys, time

random.seed(2025)
path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/earmark_rows.db"
for f in [path, path + '-wal', path + '-shm']:
    try: os.remove(f)
    except: pass
c = sqlite3.connect(path, isolation_level=None)
c.executescript("""PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=50000; PRAGMA temp_store=MEMORY;
CREATE TABLE postings (county_code TEXT NOT NULL, seq INTEGER NOT NULL, leg INTEGER NOT NULL, account_id INTEGER NOT NULL, amount INTEGER NOT NULL, entry_date TEXT NOT NULL, pending INTEGER NOT NULL, PRIMARY KEY (county_code, seq, leg)) WITHOUT ROWID;
CREATE INDEX postings_account ON postings (account_id);
CREATE TABLE claims (program TEXT NOT NULL, id_number TEXT NOT NULL, month TEXT NOT NULL, attempt INTEGER NOT NULL, payment_key TEXT NOT NULL, county_code TEXT, amount INTEGER, PRIMARY KEY (program, id_number, month, attempt));
""")
counties=[str(440100+i) for i in range(30)]
# units: 180 units, ~270 people each -> accounts contiguous per unit
units=[]
acc=1
for u in range(180):
    n=random.randint(150,450)
    units.append((counties[u%30], acc, n, [ '%s%08d%04d' % (counties[u%30], random.randint(19500101,20201231), random.randint(0,9999)) for _ in range(n)]))
    acc+=n+1
seqs={c:0 for c in counties}
t=time.time(); rows=0; tp=0; tc=0
for month in range(1,13):
    for (cc, a0, n, ids) in units:
        seqs[cc]+=1; s=seqs[cc]
        p=[(cc,s,i,a0+i,100,'2025-%02d-12'%month,1) for i in range(n+1)]
        cl=[('MBDK',ids[i],'2025-%02d'%month,0,'payment:X-%d:%d'%(s,i),cc,100) for i in range(n)]
        c.execute('BEGIN')
        t0=time.time(); c.executemany('INSERT INTO postings VALUES (?,?,?,?,?,?,?)', p); tp+=time.time()-t0
        t0=time.time(); c.executemany('INSERT INTO claims VALUES (?,?,?,?,?,?,?)', cl); tc+=time.time()-t0
        c.execute('COMMIT')
        rows+=n+1
print('postings rows', rows, 'total', round(time.time()-t,2), 's; postings', round(tp,2), 'claims', round(tc,2))
