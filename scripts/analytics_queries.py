"""The documented queries of docs/analytics.md in three engines, and the
comparison of their answers (used by scripts/analytics-spark).

usage:
  analytics_queries.py extract DOC.md                     -> {name: sql}
  analytics_queries.py spark EXPORT_DIR QUERIES.json      -> answers (Spark SQL)
  analytics_queries.py duckdb EXPORT_DIR QUERIES.json     -> answers (DuckDB)
  analytics_queries.py datafusion LOTLINE DATA_DIR QUERIES.json -> answers (lotline sql)
  analytics_queries.py compare ENGINE=ANSWERS.json ...    -> exit 1 on any difference

An answer is {name: {"columns": [...], "rows": [[...]], "seconds": s}} with
every value normalised so engines compare: numbers to 9 significant digits,
timestamps to UTC "YYYY-MM-DD HH:MM:SS". Each engine reads the export
through views named like the tables, as the doc shows.
"""
import datetime
import decimal
import json
import re
import subprocess
import sys
import time

TABLES = ["events", "identifiers", "measurements", "sensor_reports", "lineage", "custody"]
TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?$")


def extract(doc):
    """Every ```sql block whose first line is `-- query: NAME`."""
    text = open(doc, encoding="utf-8").read()
    queries = {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        first, _, rest = block.partition("\n")
        m = re.match(r"-- query: (\S+)", first)
        if m:
            queries[m.group(1)] = rest.strip()
    return queries


def norm(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(f"{float(v):.9g}")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, datetime.date):
        return v.strftime("%Y-%m-%d")
    s = str(v)
    m = TIMESTAMP.match(s)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    return s


def answers(run, queries):
    out = {}
    for name, text in queries.items():
        started = time.perf_counter()
        columns, rows = run(text)
        out[name] = {
            "columns": columns,
            "rows": [[norm(v) for v in row] for row in rows],
            "seconds": round(time.perf_counter() - started, 3),
        }
    return out


def present(root):
    manifest = json.load(open(f"{root}/manifest.json"))
    return {f["table"] for f in manifest["files"]}


def spark_dialect(text):
    """The one rewrite Spark needs (docs/analytics.md says so): it has no
    `date_part('epoch', x)`; `unix_millis(x) / 1000.0` is the same value."""
    return re.sub(r"date_part\('epoch', ([A-Za-z_.]+)\)", r"(unix_millis(\1) / 1000.0)", text)


def spark(root, queries):
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("lotline-analytics-spark")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    for table in present(root):
        # As the doc shows: the table's folder; `event_month=` becomes a column.
        session.sql(
            f"CREATE TEMPORARY VIEW {table} USING parquet OPTIONS (path '{root}/{table}')"
        )

    def run(text):
        frame = session.sql(spark_dialect(text))
        return frame.columns, [list(r) for r in frame.collect()]

    out = answers(run, queries)
    out["_engine"] = f"Spark {session.version}"
    session.stop()
    return out


def duckdb_answers(root, queries):
    import duckdb

    con = duckdb.connect()
    for table in present(root):
        con.sql(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning = true)"
        )

    def run(text):
        rel = con.sql(text)
        return rel.columns, [list(r) for r in rel.fetchall()]

    out = answers(run, queries)
    out["_engine"] = f"DuckDB {duckdb.__version__}"
    return out


def datafusion(lotline, data_dir, queries):
    def run(text):
        done = subprocess.run(
            [lotline, "sql", "--data-dir", data_dir, "--format", "json", text],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"lotline sql failed: {done.stderr}")
        answer = json.loads(done.stdout)
        columns = [c["name"] for c in answer["columns"]]
        return columns, [[row.get(c) for c in columns] for row in answer["rows"]]

    out = answers(run, queries)
    out["_engine"] = "DataFusion (lotline sql)"
    return out


def compare(pairs):
    loaded = {}
    for pair in pairs:
        engine, _, path = pair.partition("=")
        loaded[engine] = json.load(open(path))
    engines = list(loaded)
    base = engines[0]
    failed = False
    names = [n for n in loaded[base] if not n.startswith("_")]
    for engine in engines:
        print(f"{engine}: {loaded[engine]['_engine']}")
    for name in names:
        differs = False
        line = [f"{name}: {len(loaded[base][name]['rows'])} rows"]
        for engine in engines:
            line.append(f"{engine} {loaded[engine][name]['seconds']:.2f} s")
        for engine in engines[1:]:
            a, b = loaded[base][name]["rows"], loaded[engine][name]["rows"]
            if a != b:
                failed = differs = True
                diff = next(
                    (i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))
                )
                line.append(
                    f"DIFFERS {base} vs {engine} at row {diff}: "
                    f"{a[diff] if diff < len(a) else None} vs {b[diff] if diff < len(b) else None}"
                )
        if not differs:
            line.append("same rows and values in every engine")
        print("; ".join(line))
    if any(not loaded[base][n]["rows"] for n in names):
        print("note: a query answered no rows; the comparison of it is weak")
    sys.exit(1 if failed else 0)


def main():
    mode = sys.argv[1]
    if mode == "extract":
        print(json.dumps(extract(sys.argv[2])))
    elif mode == "spark":
        print(json.dumps(spark(sys.argv[2], json.load(open(sys.argv[3])))))
    elif mode == "duckdb":
        print(json.dumps(duckdb_answers(sys.argv[2], json.load(open(sys.argv[3])))))
    elif mode == "datafusion":
        print(json.dumps(datafusion(sys.argv[2], sys.argv[3], json.load(open(sys.argv[4])))))
    elif mode == "compare":
        compare(sys.argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
