"""Read Confab's event log with Confluent's own Python client and Avro deserializer.

    pip install "confluent-kafka[avro]"
    python read_events.py --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081 \
        --topic confab.events [--group analytics] [--max 100] [--idle 10]

Prints one JSON object per event (key, partition, offset, value) and exits after --max events
or --idle seconds without one. The value is the decoded Avro record: the envelope fields and the
payload as a dict.

Texts and file names are sealed in the log (crypto-shredding): blank in the payload, with their
sealed boxes in `sealed`. With --open-url (a gateway's admin listener, e.g.
http://127.0.0.1:8090) and --reader-key (its `keys.reader_key`), each event's boxes are opened
there: the fields are filled in, and those whose key was destroyed (deleted, edited, expired)
are listed in `redacted`.
"""
import argparse
import base64
import json
import time
import urllib.request

from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


def open_sealed(value, open_url, reader_key):
    """Fills in an event's sealed fields through the gateway; lists the erased ones."""
    boxes = value.get("sealed") or []
    if not boxes:
        return
    body = json.dumps({
        "workspace_id": value["workspace_id"],
        "boxes": [{
            "key_id": b["key_id"],
            "field": b["field"],
            "nonce": base64.b64encode(b["nonce"]).decode(),
            "ciphertext": base64.b64encode(b["ciphertext"]).decode(),
        } for b in boxes],
    }).encode()
    req = urllib.request.Request(open_url.rstrip("/") + "/admin/keys/open", data=body, method="POST", headers={
        "authorization": f"Bearer {reader_key}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        fields = json.load(resp)["fields"]
    payload = value["payload"]
    redacted = []
    for f in fields:
        if f.get("redacted"):
            redacted.append(f["field"])
            continue
        if "error" in f:
            raise SystemExit(f"a sealed field did not open: {f}")
        if f["field"] == "text":
            payload["text"] = f["text"]
        else:  # file_name:<file_id>: the shared file, or the attachment carrying it
            file_id = f["field"].split(":", 1)[1]
            for a in [payload.get("file")] + list(payload.get("attachments") or []):
                if a and a.get("file_id") == file_id:
                    a["name"] = f["text"]
    value["sealed"] = []
    if redacted:
        value["redacted"] = redacted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", default="confab.events")
    ap.add_argument("--group", default="analytics")
    ap.add_argument("--max", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--open-url", help="a gateway's admin listener, to open sealed fields")
    ap.add_argument("--reader-key", help="its keys.reader_key")
    args = ap.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    consumer = DeserializingConsumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "key.deserializer": StringDeserializer("utf_8"),
        "value.deserializer": AvroDeserializer(registry),
    })
    consumer.subscribe([args.topic])
    seen, last = 0, time.monotonic()
    try:
        while seen < args.max and time.monotonic() - last < args.idle:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise SystemExit(f"kafka error: {msg.error()}")
            last = time.monotonic()
            seen += 1
            if args.open_url:
                open_sealed(msg.value(), args.open_url, args.reader_key)
            print(json.dumps({"key": msg.key(), "partition": msg.partition(), "offset": msg.offset(), "value": msg.value()}, default=str), flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
