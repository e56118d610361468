"""Produces messages with explicit timestamps, then asks `offsets_for_times`
(ListOffsets by timestamp) where given timestamps land.

usage: offsets_for_times.py BOOTSTRAP TOPIC --base-ts MS --step-ms MS --messages N
                            --batch N --query TS [--query TS ...] [--compression CODEC]

Message i has timestamp base + i * step; the producer is flushed every
`--batch` messages so the partition holds several record batches. Prints
{"produced": [{"offset", "timestamp"}], "consumed": [{"offset", "timestamp",
"timestamp_type"}], "answers": [{"query", "offset"}]}. Exits non-zero on any
client error.
"""

import argparse
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)

from compat_common import ClientErrors, emit, fail

DEADLINE_S = 30


def produce(args):
    errors = ClientErrors()
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "compression.type": args.compression,
            "error_cb": errors,
        }
    )
    produced = [None] * args.messages
    failures = []

    def report(error, msg):
        if error is not None:
            failures.append(str(error))
            return
        seq = int(msg.value().decode())
        produced[seq] = {"offset": msg.offset(), "timestamp": msg.timestamp()[1]}

    for seq in range(args.messages):
        producer.produce(
            args.topic,
            value=str(seq).encode(),
            timestamp=args.base_ts + seq * args.step_ms,
            on_delivery=report,
        )
        if (seq + 1) % args.batch == 0:
            if producer.flush(DEADLINE_S):
                fail(f"messages undelivered after {DEADLINE_S} s")
    if producer.flush(DEADLINE_S):
        fail(f"messages undelivered after {DEADLINE_S} s")
    if failures:
        fail(f"delivery failed: {failures[:5]}")
    errors.check("producer")
    return produced


def consume_and_query(args):
    errors = ClientErrors()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            # Required by the client; only assign() and ListOffsets are used.
            "group.id": "sediment-compat-assign-only",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "error_cb": errors,
        }
    )
    result = []
    # One call per timestamp: librdkafka keeps one entry per partition, so
    # several timestamps for the same partition in one call would collapse.
    for ts in args.query:
        (answer,) = consumer.offsets_for_times(
            [TopicPartition(args.topic, 0, ts)], timeout=DEADLINE_S
        )
        if answer.error is not None:
            fail(f"offsets_for_times({ts}) failed: {answer.error}")
        result.append({"query": ts, "offset": answer.offset})

    consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
    consumed = []
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if time.monotonic() > deadline:
            fail(f"read {len(consumed)} of {args.messages} messages in {DEADLINE_S} s")
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            fail(f"consumer error: {msg.error()}")
        kind, ts = msg.timestamp()
        consumed.append(
            {
                "offset": msg.offset(),
                "timestamp": ts,
                "timestamp_type": "create" if kind == TIMESTAMP_CREATE_TIME else str(kind),
            }
        )
    consumer.close()
    errors.check("consumer")
    return result, consumed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--base-ts", type=int, required=True)
    parser.add_argument("--step-ms", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--query", type=int, action="append", required=True)
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()
    produced = produce(args)
    answers, consumed = consume_and_query(args)
    emit({"produced": produced, "consumed": consumed, "answers": answers})


if __name__ == "__main__":
    main()
