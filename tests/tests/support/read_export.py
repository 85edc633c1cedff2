"""Reads a Lotline analytics export with pyarrow and DuckDB (not Lotline's
code) and prints what the Rust test compares with the node's API, as JSON.

usage: read_export.py EXPORT_DIR [QUERIES_JSON]

QUERIES_JSON maps names to SQL run in DuckDB over views named like the
tables (docs/analytics.md, "The same files in DuckDB"); each answer is
printed as rows of strings.
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds

TABLES = ["events", "identifiers", "measurements", "sensor_reports", "lineage", "custody"]

root = sys.argv[1]
manifest = json.load(open(f"{root}/manifest.json"))
out = {"pyarrow": {}, "duckdb": {}, "events": [], "measurements": [], "sensor_max": {}}
listed = {t: [f["path"] for f in manifest["files"] if f["table"] == t] for t in TABLES}
for table in TABLES:
    files = [f"{root}/{p}" for p in listed[table]]
    if not files:
        out["pyarrow"][table] = 0
        out["duckdb"][table] = 0
        continue
    dataset = ds.dataset(files, format="parquet", partitioning="hive")
    out["pyarrow"][table] = dataset.count_rows()
    glob = f"{root}/{table}/*/*.parquet"
    out["duckdb"][table] = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchone()[0]

if listed["events"]:
    events = ds.dataset(
        [f"{root}/{p}" for p in listed["events"]], format="parquet", partitioning="hive"
    ).to_table(columns=["attestation_id", "org", "event_type", "height", "event_time", "event_month"])
    for row in events.to_pylist():
        row["event_time"] = row["event_time"].strftime("%Y-%m-%dT%H:%M:%S")
        # The Hive partition, as pyarrow parses it from the folder name.
        row["event_month"] = str(row["event_month"])
        out["events"].append(row)
if listed["measurements"]:
    glob = f"{root}/measurements/*/*.parquet"
    out["measurements"] = [
        {"attestation_id": a, "name": n, "value": v, "within_spec": w}
        for (a, n, v, w) in duckdb.sql(
            f"SELECT attestation_id, name, value, within_spec FROM read_parquet('{glob}') ORDER BY 1, 2"
        ).fetchall()
    ]
if listed["sensor_reports"]:
    glob = f"{root}/sensor_reports/*/*.parquet"
    for (kind, high) in duckdb.sql(
        f"SELECT type, max(coalesce(max_value, value)) FROM read_parquet('{glob}') GROUP BY 1"
    ).fetchall():
        out["sensor_max"][kind] = high
if len(sys.argv) > 2:
    queries = json.load(open(sys.argv[2]))
    con = duckdb.connect()
    for table in TABLES:
        if listed[table]:
            con.sql(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning = true)"
            )
    out["queries"] = {
        name: [[None if v is None else str(v) for v in row] for row in con.sql(text).fetchall()]
        for name, text in queries.items()
    }
print(json.dumps(out))
