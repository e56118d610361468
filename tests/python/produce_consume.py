"""Produces self-describing messages with confluent-kafka (acks=all), then reads
the topic back with an assign()-only Consumer (no group APIs, no commits).

usage: produce_consume.py BOOTSTRAP TOPIC --compression CODEC --messages N
                          [--idempotence] [--create-partitions P]

Prints {"produced": [...], "consumed": [...], "producer_requests": {...},
"consumer_requests": {...}}: every message as sent (with the partition and
offset of its delivery report) and as read back (keys, values and header
values hex, null stays null), and the requests each client sent (from
librdkafka's protocol debug log). Exits non-zero on any client error.
"""

import argparse
import hashlib
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from compat_common import (
    ClientErrors,
    RequestLog,
    emit,
    fail,
    headers_json,
    hexed,
    wait_futures,
)

DEADLINE_S = 60


def message(seq):
    """The seq-th message: varied keys (some null), binary values (one null,
    one empty, sizes 40 B to ~3 KiB, compressible) and headers (null values,
    a repeated name, binary bytes)."""
    key = None if seq % 50 == 7 else f"key-{seq % 13}".encode()
    digest = hashlib.sha256(str(seq).encode()).digest()
    if seq % 97 == 5:
        value = None
    elif seq % 101 == 3:
        value = b""
    else:
        value = b"v-%06d-" % seq + digest * (1 + seq % 96) + bytes(range(256))[: seq % 256]
    headers = [
        ("seq", str(seq).encode()),
        ("bin", bytes([seq % 256, 0, 255, 10, 13])),
        ("null", None),
        ("dup", b"first"),
        ("dup", b"second"),
    ]
    if seq % 3 == 0:
        headers.append(("empty", b""))
    return key, value, headers


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=10,
    )
    outcome = wait_futures(futures, 30, "create_topics")
    if outcome[topic] is not None:
        fail(f"create_topics {topic} with {partitions} partitions failed: {outcome[topic]}")


def produce(args):
    errors = ClientErrors()
    requests = RequestLog()
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "compression.type": args.compression,
            "enable.idempotence": args.idempotence,
            "message.timeout.ms": DEADLINE_S * 1000,
            "error_cb": errors,
            "debug": "protocol",
            "logger": requests.logger(f"producer-{args.topic}"),
        }
    )
    produced = []
    failures = []

    def on_delivery(seq):
        def report(error, msg):
            if error is not None:
                failures.append(f"message {seq}: {error}")
                return
            produced[seq]["partition"] = msg.partition()
            produced[seq]["offset"] = msg.offset()

        return report

    for seq in range(args.messages):
        key, value, headers = message(seq)
        produced.append(
            {
                "seq": seq,
                "partition": None,
                "offset": None,
                "key": hexed(key),
                "value": hexed(value),
                "headers": headers_json(headers),
            }
        )
        while True:
            try:
                producer.produce(
                    args.topic, key=key, value=value, headers=headers, on_delivery=on_delivery(seq)
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(DEADLINE_S)
    if left:
        fail(f"{left} messages still undelivered after {DEADLINE_S} s")
    if failures:
        fail(f"{len(failures)} delivery reports failed, first: {failures[:5]}")
    missing = [p["seq"] for p in produced if p["offset"] is None]
    if missing:
        fail(f"no delivery report for messages {missing[:10]}")
    errors.check("producer")
    return produced, requests.sent


def consume(args, partitions):
    errors = ClientErrors()
    requests = RequestLog()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            # Required by the client; only assign() is used: no join, no commit.
            "group.id": "sediment-compat-assign-only",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": True,
            "error_cb": errors,
            "debug": "protocol",
            "logger": requests.logger(f"consumer-{args.topic}"),
        }
    )
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
    consumed = []
    at_end = set()
    deadline = time.monotonic() + DEADLINE_S
    while at_end != set(partitions) or len(consumed) < args.messages:
        if time.monotonic() > deadline:
            fail(
                f"read {len(consumed)} of {args.messages} messages in {DEADLINE_S} s "
                f"(partitions at end: {sorted(at_end)})"
            )
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
                continue
            fail(f"consumer error: {msg.error()}")
        at_end.discard(msg.partition())
        consumed.append(
            {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": hexed(msg.key()),
                "value": hexed(msg.value()),
                "headers": headers_json(msg.headers()),
            }
        )
    consumer.close()
    errors.check("consumer")
    return consumed, requests.sent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--idempotence", action="store_true")
    parser.add_argument(
        "--create-partitions",
        type=int,
        default=0,
        help="create the topic with AdminClient first (0: let the producer auto-create it)",
    )
    args = parser.parse_args()
    if args.create_partitions:
        create_topic(args.bootstrap, args.topic, args.create_partitions)
    produced, producer_requests = produce(args)
    partitions = sorted({p["partition"] for p in produced} | set(range(max(1, args.create_partitions))))
    consumed, consumer_requests = consume(args, partitions)
    emit(
        {
            "produced": produced,
            "consumed": consumed,
            "producer_requests": producer_requests,
            "consumer_requests": consumer_requests,
        }
    )


if __name__ == "__main__":
    main()
