"""Read Confab's event log with Confluent's own Python client and Avro deserializer.

    pip install "confluent-kafka[avro]"
    python read_events.py --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081 \
        --topic confab.events [--group analytics] [--max 100] [--idle 10]

Prints one JSON object per event (key, partition, offset, value) and exits after --max events
or --idle seconds without one. The value is the decoded Avro record: the envelope fields and the
payload as a dict.
"""
import argparse
import json
import time

from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", default="confab.events")
    ap.add_argument("--group", default="analytics")
    ap.add_argument("--max", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0)
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
            print(json.dumps({"key": msg.key(), "partition": msg.partition(), "offset": msg.offset(), "value": msg.value()}, default=str), flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
