"""One confluent-kafka consumer in a group, with manual commits, driven by
the Rust test through its stdin and stdout.

usage: group_member.py BOOTSTRAP GROUP TOPIC NAME

Subscribes to TOPIC in GROUP and prints one JSON object per line:
  {"event": "assigned", "partitions": [...]}   the whole new assignment (eager)
  {"event": "revoked", "partitions": [...]}
  {"event": "consumed", "partition": P, "offset": O, "value": "..."}
  {"event": "committed"}                       after each synchronous commit
  {"event": "commit_failed", "error": "..."}   (e.g. during a rebalance)
  {"event": "closed"}                          after leaving the group
Each batch of messages is printed ("processed") before it is committed, so a
crash never commits what was not printed. When stdin closes, the member
commits, leaves the group (close() sends LeaveGroup) and exits 0.
"""

import argparse
import sys
import threading

from confluent_kafka import Consumer, KafkaError, KafkaException

from compat_common import emit, error_text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("name")
    args = parser.parse_args()

    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    def on_error(error):
        emit({"event": "client_error", "error": str(error)})

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "client.id": args.name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 250,
            "topic.metadata.refresh.interval.ms": 1000,
            "error_cb": on_error,
        }
    )

    def commit():
        try:
            consumer.commit(asynchronous=False)
            emit({"event": "committed"})
        except KafkaException as error:
            if error.args and error.args[0].code() == KafkaError._NO_OFFSET:
                return
            emit({"event": "commit_failed", "error": error_text(error)})

    def on_assign(_consumer, partitions):
        emit({"event": "assigned", "partitions": sorted(p.partition for p in partitions)})

    def on_revoke(_consumer, partitions):
        # Commit what was processed before the partitions move on.
        commit()
        emit({"event": "revoked", "partitions": sorted(p.partition for p in partitions)})

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.is_set():
        messages = consumer.consume(num_messages=100, timeout=0.1)
        processed = False
        for message in messages:
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    emit({"event": "client_error", "error": str(message.error())})
                continue
            emit(
                {
                    "event": "consumed",
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "value": (message.value() or b"").decode(errors="replace"),
                }
            )
            processed = True
        if processed:
            commit()
    commit()
    consumer.close()
    emit({"event": "closed"})


if __name__ == "__main__":
    main()
