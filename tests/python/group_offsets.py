"""Committed offsets through confluent-kafka group consumers.

usage: group_offsets.py BOOTSTRAP consume-commit GROUP TOPIC COUNT
       group_offsets.py BOOTSTRAP committed GROUP TOPIC PARTITIONS
       group_offsets.py BOOTSTRAP resume GROUP TOPIC PARTITIONS

consume-commit: joins GROUP, consumes exactly COUNT messages of TOPIC (from
  the earliest offset), commits them synchronously (manual commit) and prints
  {"committed": {"P": next_offset, ...}} for every partition of TOPIC as the
  broker reports it afterwards (-1001 where nothing was committed).
committed: prints {"committed": {"P": offset, ...}} for partitions
  0..PARTITIONS-1 (-1001, librdkafka's OFFSET_INVALID, when none).
resume: joins GROUP and prints {"first": {"P": offset, ...}}: the offset of
  the first message it is given in each partition that still has messages
  (so it resumes where the group committed), without committing anything.
Exits non-zero with a reason on stderr on any failure.
"""

import argparse
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition

from compat_common import ClientErrors, emit, fail

DEADLINE_S = 60


def consumer(bootstrap, group, errors, eof=False):
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": eof,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 250,
            "error_cb": errors,
        }
    )


def committed(client, topic, partitions):
    found = client.committed(
        [TopicPartition(topic, p) for p in range(partitions)], timeout=30
    )
    for tp in found:
        if tp.error:
            fail(f"committed() of partition {tp.partition}: {tp.error}")
    return {str(tp.partition): tp.offset for tp in found}


def consume_commit(args, errors):
    client = consumer(args.bootstrap, args.group, errors)
    client.subscribe([args.topic])
    taken = 0
    deadline = time.monotonic() + DEADLINE_S
    while taken < args.count:
        if time.monotonic() > deadline:
            fail(f"consumed only {taken} of {args.count} messages within {DEADLINE_S} s")
        for message in client.consume(num_messages=args.count - taken, timeout=0.5):
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    fail(f"consume: {message.error()}")
                continue
            taken += 1
    client.commit(asynchronous=False)
    metadata = client.list_topics(args.topic, timeout=30).topics[args.topic]
    result = committed(client, args.topic, len(metadata.partitions))
    client.close()
    errors.check("consumer")
    emit({"committed": result})


def resume(args, errors):
    client = consumer(args.bootstrap, args.group, errors, eof=True)
    client.subscribe([args.topic])
    first = {}
    eof = set()
    everything = set(range(args.partitions))
    deadline = time.monotonic() + DEADLINE_S
    while {int(p) for p in first} | eof != everything:
        if time.monotonic() > deadline:
            fail(f"no message or end of partition within {DEADLINE_S} s (have {first}, eof {eof})")
        for message in client.consume(num_messages=100, timeout=0.5):
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(message.partition())
                    continue
                fail(f"consume: {message.error()}")
            first.setdefault(str(message.partition()), message.offset())
    client.close()
    errors.check("consumer")
    emit({"first": first})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("mode", choices=["consume-commit", "committed", "resume"])
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("number", type=int)
    args = parser.parse_args()
    errors = ClientErrors()
    if args.mode == "consume-commit":
        args.count = args.number
        consume_commit(args, errors)
    elif args.mode == "committed":
        client = consumer(args.bootstrap, args.group, errors)
        result = committed(client, args.topic, args.number)
        client.close()
        errors.check("consumer")
        emit({"committed": result})
    else:
        args.partitions = args.number
        resume(args, errors)


if __name__ == "__main__":
    main()
