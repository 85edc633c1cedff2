"""Reads a Lotline analytics export from an S3-compatible endpoint with
pyarrow's own S3 client (not Lotline's code) and prints, as JSON, what the
Rust test compares with the same export written to a folder.

usage: read_s3_export.py s3://BUCKET/PREFIX

The endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION. Tables are found by listing, not
from the manifest: `{table}/event_month=.../*.parquet` with Hive partitioning, as
Spark or Trino would discover them.
"""
import json
import os
import sys
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as pafs

TABLES = ["events", "identifiers", "measurements", "sensor_reports", "lineage", "custody"]

url = urlparse(sys.argv[1])
root = f"{url.netloc}{url.path}".rstrip("/")
endpoint = urlparse(os.environ["AWS_ENDPOINT_URL"])
s3 = pafs.S3FileSystem(
    access_key=os.environ["AWS_ACCESS_KEY_ID"],
    secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region=os.environ["AWS_REGION"],
    endpoint_override=endpoint.netloc,
    scheme=endpoint.scheme,
)
out = {"keys": [], "rows": {}, "manifest": None, "event_ids": []}
for info in s3.get_file_info(pafs.FileSelector(root, recursive=True)):
    if info.type == pafs.FileType.File:
        out["keys"].append(info.path[len(root) + 1 :])
out["keys"].sort()
with s3.open_input_stream(f"{root}/manifest.json") as f:
    out["manifest"] = json.loads(f.read())
for table in TABLES:
    if not any(k.startswith(f"{table}/") for k in out["keys"]):
        out["rows"][table] = 0
        continue
    dataset = ds.dataset(f"{root}/{table}", filesystem=s3, format="parquet", partitioning="hive")
    out["rows"][table] = dataset.count_rows()
    if table == "events":
        names = dataset.schema.names
        assert "event_month" in names, names
        out["event_ids"] = sorted(dataset.to_table(columns=["attestation_id"])["attestation_id"].to_pylist())
print(json.dumps(out))
