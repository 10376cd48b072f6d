"""Land Confab's event log in a Parquet file, with DuckDB, for analytics.

    pip install "confluent-kafka[avro]" duckdb
    python land_parquet.py --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081 \
        --topic confab.events [--topic ...] --out events.parquet [--idle 10] [--max N]

Reads each topic from its beginning with Confluent's Python client. Every record is decoded with
the schema it was written with (its id is in the record), so a log holding events of every schema
version since v1 lands in one table: fields a version did not have are NULL (`sealed`,
`destroys_keys` before v5), and each event's kind is the name of its payload record (new kinds
appear as new values, never as new columns). The payload is kept as JSON, for DuckDB's `->>`:

    SELECT payload->>'text' FROM 'events.parquet' WHERE kind = 'MessagePosted';

Texts and file names are sealed in the log since v5 (crypto-shredding): blank in the payload,
named in `sealed_fields`. Open them first with read_events.py --open-url if the analysis needs
them; a landed copy then holds text that a later deletion cannot reach, so land only what the
analysis needs and expire it like the workspace's retention.
"""
import argparse
import datetime
import json
import time

import duckdb
from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

COLUMNS = """
    topic VARCHAR, kafka_partition INTEGER, kafka_offset BIGINT, key VARCHAR,
    event_id UUID, workspace_id UUID, channel_id UUID, actor_id UUID,
    occurred_at TIMESTAMPTZ, seq BIGINT, schema_version INTEGER, kind VARCHAR,
    payload JSON, sealed_fields VARCHAR[], destroys_keys UUID[]
"""


def plain(value):
    """JSON-ready: bytes as hex, timestamps as epoch milliseconds, union branches unwrapped."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return plain(value[1])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


def row(msg):
    """One event as a row of the table."""
    v = msg.value()
    kind, payload = v["payload"]  # (record name, fields): return_record_name=True
    occurred = v["occurred_at"]
    if not isinstance(occurred, datetime.datetime):
        occurred = datetime.datetime.fromtimestamp(occurred / 1000, tz=datetime.timezone.utc)
    sealed = v.get("sealed")
    return (
        msg.topic(), msg.partition(), msg.offset(), msg.key(),
        v["event_id"], v["workspace_id"], v["channel_id"], v["actor_id"],
        occurred, v["seq"], v["schema_version"], kind.rsplit(".", 1)[-1],
        json.dumps(plain(payload)),
        None if sealed is None else [b["field"] for b in sealed],
        v.get("destroys_keys"),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", action="append", required=True)
    ap.add_argument("--out", required=True, help="the Parquet file to write")
    ap.add_argument("--group", default=f"parquet-lander-{int(time.time())}")
    ap.add_argument("--max", type=int, default=0, help="stop after this many events (0: no limit)")
    ap.add_argument("--idle", type=float, default=10.0, help="stop after this many seconds without an event")
    args = ap.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    consumer = DeserializingConsumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "key.deserializer": StringDeserializer("utf_8"),
        # no reader schema: each record in the schema it was written with
        "value.deserializer": AvroDeserializer(registry, return_record_name=True),
    })
    consumer.subscribe(args.topic)
    db = duckdb.connect()
    db.execute(f"CREATE TABLE events ({COLUMNS})")
    rows, last = [], time.monotonic()
    while time.monotonic() - last < args.idle and not (args.max and len(rows) >= args.max):
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise SystemExit(f"kafka: {msg.error()}")
        rows.append(row(msg))
        last = time.monotonic()
    consumer.close()
    if rows:
        db.executemany(f"INSERT INTO events VALUES ({', '.join(['?'] * 15)})", rows)
    out = args.out.replace("'", "''")
    db.execute(f"COPY (SELECT * FROM events ORDER BY topic, kafka_partition, kafka_offset) TO '{out}' (FORMAT PARQUET)")
    versions = db.execute("SELECT schema_version, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
    print(json.dumps({"out": args.out, "events": len(rows), "by_schema_version": dict(versions)}))


if __name__ == "__main__":
    main()
