"""Test fixture: writes events in each historical schema (schemas/avro/history, v1 to v4) to a
topic, the way a deployment that started at v1 holds them: each schema registered under the
topic's subject, each record framed Confluent's way (magic byte, schema id) and Avro-encoded
with that schema. One channel: created (v1), then a message per version (seq 2 to 5) whose text
names its version ("posted under v1", ...).

    python write_history.py --brokers B --registry URL --write-key K --topic T --workspace W \
        --channel C --actor A
"""
import argparse
import io
import json
import pathlib
import struct
import urllib.request
import uuid

import fastavro
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

HISTORY = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "avro" / "history"


def register(registry, key, subject, schema):
    body = json.dumps({"schema": json.dumps(schema)}).encode()
    req = urllib.request.Request(f"{registry}/subjects/{subject}/versions", data=body, method="POST", headers={
        "authorization": f"Bearer {key}", "content-type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)["id"]


def zero(avro_type):
    """A value of the type for a field the fixture does not set and that has no default."""
    if isinstance(avro_type, list):
        return None if "null" in avro_type else zero(avro_type[0])
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        return [] if kind == "array" else {} if kind == "map" else zero(kind)
    return {"string": "", "long": 0, "int": 0, "boolean": False, "bytes": b"", "double": 0.0}[avro_type]


def record(schema, name, values):
    """The payload record `name` of `schema`, with `values` and every other field at its default."""
    branch = next(t for t in schema["fields"][-1]["type"] if t["name"] == name)
    def value(field):
        if field["name"] in values:
            return values[field["name"]]
        return field["default"] if "default" in field else zero(field["type"])
    fields = {f["name"]: value(f) for f in branch["fields"]}
    return (f"{schema['namespace']}.{name}", fields)


def main():
    ap = argparse.ArgumentParser()
    for a in ["brokers", "registry", "write-key", "topic", "workspace", "channel", "actor"]:
        ap.add_argument(f"--{a}", required=True)
    args = ap.parse_args()
    # the test broker creates no topic by itself
    admin = AdminClient({"bootstrap.servers": args.brokers})
    created = admin.create_topics([NewTopic(args.topic, 1, 1)])
    try:
        created[args.topic].result(30)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True})
    key = f"{args.workspace}:{args.channel}"
    seq = 0
    for version in [1, 2, 3, 4]:
        schema = json.loads((HISTORY / f"event.v{version}.avsc").read_text())
        schema_id = register(args.registry, args.write_key, f"{args.topic}-value", schema)
        parsed = fastavro.parse_schema(schema)
        payloads = []
        if version == 1:
            payloads.append(record(schema, "ChannelCreated", {"name": "archive", "members": [args.actor]}))
        text = f"posted under v{version}"
        payloads.append(record(schema, "MessagePosted", {
            "message_id": str(uuid.uuid1()), "client_msg_id": f"v{version}", "text": text}))
        for payload in payloads:
            seq += 1
            event = {
                "event_id": str(uuid.uuid4()), "workspace_id": args.workspace, "channel_id": args.channel,
                "actor_id": args.actor, "occurred_at": 1_700_000_000_000 + seq, "seq": seq,
                "schema_version": version, "payload": payload,
            }
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, event)
            producer.produce(args.topic, key=key, value=b"\0" + struct.pack(">I", schema_id) + buf.getvalue())
    if producer.flush(30) != 0:
        raise SystemExit("not every record was delivered")
    print(json.dumps({"topic": args.topic, "events": seq}))


if __name__ == "__main__":
    main()
