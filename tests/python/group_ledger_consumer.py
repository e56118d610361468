"""An at-least-once confluent-kafka group consumer that keeps a ledger, for
the consumer-group crash test (tests/group_crash.rs).

usage: group_ledger_consumer.py BOOTSTRAP GROUP TOPIC LEDGER NAME
                                [--batch N] [--rate MSGS_PER_S]

The contract it follows, so that a crash (of this process or of the broker)
never commits what was not processed and duplicates stay bounded:
- A batch is at most --batch messages (collected with poll(), see below).
- Each batch is appended to LEDGER, one line per message
  "TOPIC PARTITION OFFSET CRC32-OF-VALUE-HEX\\n", and the file is fsynced
  BEFORE the batch's offsets are committed. Processing takes
  len(batch) / --rate seconds (a sleep between the fsync and the commit), so
  a SIGKILL usually lands after the ledger and before the commit: the worst
  case for duplicates.
- Commits are synchronous, with explicit offsets (enable.auto.offset.store is
  off, so a message handed over but not processed is never committed).
- While a commit has not gone through, nothing more is processed: the commit
  is retried, and poll() is only called to let librdkafka run rebalance
  callbacks; a message it hands over meanwhile is put back with seek() to its
  own offset. So at most one batch is processed-but-uncommitted at any time.
- On revoke (eager rebalance, or partitions lost after a broker restart) the
  pending offsets are committed if the group still allows it, then dropped:
  the next owner resumes from the committed offset and reprocesses the rest.
- A batch under construction when a rebalance callback runs is discarded
  unprocessed: its messages belong to the old assignment, and whoever owns
  the partitions next reads them again from the committed offset.

Batches are collected with poll() one message at a time rather than
consume(num_messages=N): poll() runs rebalance callbacks before it returns a
message, so every message can be attributed to the assignment it came from.

It prints one JSON object per line on stdout:
  {"event": "assigned", "partitions": [...]}
  {"event": "revoked", "partitions": [...], "dropped": N}  N pending offsets lost
  {"event": "processed", "count": N}                        a batch in the ledger
  {"event": "committed", "offsets": {"P": next_offset}}
  {"event": "commit_failed", "error": "..."}
  {"event": "client_error", "error": "..."}
  {"event": "closed"}
When stdin closes it commits what is pending, leaves the group and exits 0.
"""

import argparse
import os
import sys
import threading
import time
import zlib

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from compat_common import emit, error_text


class LedgerConsumer:
    def __init__(self, args):
        self.args = args
        self.pending = {}  # partition -> next offset: processed and in the ledger, not committed
        self.epoch = 0  # bumped by every rebalance callback
        self.ledger = os.open(args.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        config = {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "client.id": args.name,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            # Bounds how long a rebalance waits for members to rejoin.
            "max.poll.interval.ms": 15000,
            # Reconnect quickly after the broker restarts.
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000,
            "error_cb": lambda error: emit({"event": "client_error", "error": str(error)}),
        }
        if args.debug:
            config["debug"] = args.debug  # librdkafka's debug contexts, logged on stderr
        self.consumer = Consumer(config)

    def commit_pending(self):
        """Commits the pending offsets synchronously; True once nothing is pending."""
        if not self.pending:
            return True
        offsets = [TopicPartition(self.args.topic, p, o) for p, o in sorted(self.pending.items())]
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            emit({"event": "commit_failed", "error": error_text(error)})
            return False
        failed = [tp for tp in result or [] if tp.error]
        if failed:
            emit({"event": "commit_failed", "error": str(failed[0].error)})
            return False
        emit({"event": "committed", "offsets": {str(p): o for p, o in self.pending.items()}})
        self.pending.clear()
        return True

    def on_assign(self, _consumer, partitions):
        self.epoch += 1
        emit({"event": "assigned", "partitions": sorted(p.partition for p in partitions)})

    def on_revoke(self, _consumer, partitions):
        self.epoch += 1
        # Hand over cleanly if the group still accepts our commit; if not
        # (e.g. the broker restarted and forgot us), the next owner
        # reprocesses from the last committed offset.
        self.commit_pending()
        dropped = len(self.pending)
        self.pending.clear()
        emit(
            {
                "event": "revoked",
                "partitions": sorted(p.partition for p in partitions),
                "dropped": dropped,
            }
        )

    def put_back(self, message):
        """Un-reads a message handed over while a commit is outstanding."""
        assigned = {tp.partition for tp in self.consumer.assignment()}
        if message.partition() not in assigned:
            return  # no longer ours: the next owner reads it from the committed offset
        self.consumer.seek(TopicPartition(self.args.topic, message.partition(), message.offset()))

    def collect_batch(self, stop):
        """Up to --batch messages, all from the current assignment."""
        batch = []
        epoch = self.epoch
        deadline = time.monotonic() + 0.5
        while len(batch) < self.args.batch and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            message = self.consumer.poll(timeout=min(remaining, 0.1) if batch else remaining)
            if self.epoch != epoch:
                # A rebalance callback ran: what was collected came from the
                # old assignment and is left for its next owner.
                batch = []
                epoch = self.epoch
            if message is None:
                if batch:
                    break
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    emit({"event": "client_error", "error": str(message.error())})
                continue
            batch.append(message)
        return batch

    def process(self, batch):
        lines = []
        for message in batch:
            value = message.value() or b""
            lines.append(
                f"{message.topic()} {message.partition()} {message.offset()} "
                f"{zlib.crc32(value):08x}\n"
            )
        data = "".join(lines).encode()
        written = 0
        while written < len(data):
            written += os.write(self.ledger, data[written:])
        os.fsync(self.ledger)
        for message in batch:
            self.pending[message.partition()] = message.offset() + 1
        emit({"event": "processed", "count": len(batch)})
        # The processing itself, after the ledger: a kill here leaves the
        # whole batch processed but uncommitted.
        time.sleep(len(batch) / self.args.rate)

    def run(self, stop):
        self.consumer.subscribe([self.args.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while not stop.is_set():
            if self.pending:
                # The last commit failed: retry it, processing nothing new
                # until it lands or the partitions are revoked.
                if self.commit_pending():
                    continue
                message = self.consumer.poll(timeout=0.2)
                if message is not None and not message.error():
                    self.put_back(message)
                continue
            batch = self.collect_batch(stop)
            if batch:
                self.process(batch)
                self.commit_pending()
        self.commit_pending()
        self.consumer.close()
        os.close(self.ledger)
        emit({"event": "closed"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("ledger")
    parser.add_argument("name")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--debug", default="")
    args = parser.parse_args()

    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        LedgerConsumer(args).run(stop)
    except KafkaException as error:
        print(f"{sys.argv[0]}: {error_text(error)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
