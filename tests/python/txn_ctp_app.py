"""An exactly-once consume-transform-produce app with confluent-kafka, for
the transaction tests (tests/transactions.rs), driven through stdin and
stdout.

usage: txn_ctp_app.py BOOTSTRAP GROUP INPUT OUTPUT TRANSACTIONAL_ID NAME
                      [--batch B] [--hold PHASE --hold-after N] [--debug CONTEXTS]

It reads INPUT in GROUP (subscribe, isolation.level=read_committed, no
auto-commit) and, for every input record, produces one output record to
OUTPUT (same partition, same key, value "out:" + input value) inside a
transaction that also carries the consumed offsets
(send_offsets_to_transaction with the consumer's group metadata). A
transaction is committed after B records, or earlier when no more input
is waiting. The transactional id is the same for every instance, so a
restarted instance fences its killed predecessor and aborts what it left
open (init_transactions runs before the consumer joins the group).

Errors follow librdkafka's transactional contract: a retriable error
repeats the call, an abortable one aborts the transaction and rewinds the
consumer to the group's committed offsets (so the aborted input is
processed again), a fatal one exits 2. On a revoke an open transaction is
aborted (the next owner resumes from the committed offsets).

With --hold PHASE --hold-after N, once this instance has committed N
transactions, the next transaction stops at PHASE ("produced": its output
records are flushed to the log; "offsets_sent": its offsets are staged
too) and waits for a line "go" on stdin (the Rust test kills it there, or
kills the broker and lets it go on). --debug passes librdkafka debug
contexts (e.g. "eos,cgrp,protocol") to both clients; they log on stderr.

It prints one JSON object per line on stdout:
  {"event": "ready"}                                  init_transactions done
  {"event": "assigned" | "revoked", "partitions": [...]}
  {"event": "produced", "txn": T, "records": R}       flushed in the open transaction
  {"event": "offsets_sent", "txn": T, "offsets": {"P": next}}
  {"event": "committed", "txn": T, "records": R, "offsets": {"P": next}}
  {"event": "aborted", "txn": T, "reason": "..."}
  {"event": "rewound", "offsets": {"P": offset}}
  {"event": "retry", "call": "...", "error": "..."}
  {"event": "holding", "phase": PHASE, "txn": T}
  {"event": "client_error", "error": "..."}
  {"event": "closed"}
When stdin closes it aborts an open transaction (there is none once the
input is drained), leaves the group and exits 0.
"""

import argparse
import sys

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from compat_common import StdinCommands, emit, error_text

DEADLINE_S = 60


class Fatal(Exception):
    """A fatal client error: the instance cannot go on."""


class App:
    def __init__(self, args, commands):
        self.args = args
        self.commands = commands
        client_error = lambda error: emit({"event": "client_error", "error": str(error)})
        debug = {"debug": args.debug} if args.debug else {}  # librdkafka's, on stderr
        self.producer = Producer(
            {
                "bootstrap.servers": args.bootstrap,
                "transactional.id": args.transactional_id,
                "transaction.timeout.ms": 30000,
                "linger.ms": 5,
                # Reconnect quickly after the broker restarts.
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                # No re-bootstrap when the only broker is down: librdkafka
                # then decommissions the cached group coordinator, and a
                # send_offsets_to_transaction() after the restart hangs
                # (TxnOffsetCommit is never sent; librdkafka issue #5511).
                "metadata.recovery.strategy": "none",
                "error_cb": client_error,
                **debug,
            }
        )
        self.consumer = Consumer(
            {
                "bootstrap.servers": args.bootstrap,
                "group.id": args.group,
                "client.id": args.name,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                # A killed instance leaves the group after 4 s; a held one
                # keeps its membership (its heartbeats go on).
                "session.timeout.ms": 4000,
                "heartbeat.interval.ms": 300,
                "max.poll.interval.ms": 120000,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                "metadata.recovery.strategy": "none",  # as the producer's
                "topic.metadata.refresh.interval.ms": 2000,
                "error_cb": client_error,
                **debug,
            }
        )
        self.txn = 0  # transactions begun by this instance
        self.committed = 0  # ... and committed
        self.in_txn = False
        self.records = 0  # output records in the open transaction
        self.next_offsets = {}  # partition -> next input offset, in the open transaction
        self.rewind_needed = False

    # ---- librdkafka's error contract ----

    def call(self, what, operation):
        """Runs a transactional call: retried while retriable. Returns False
        when the transaction had to be aborted; raises Fatal."""
        while True:
            try:
                operation()
                return True
            except KafkaException as exception:
                error = exception.args[0]
                if error.fatal():
                    raise Fatal(f"{what}: {error_text(exception)}")
                if error.txn_requires_abort():
                    self.abort(f"{what}: {error_text(exception)}")
                    return False
                if error.retriable():
                    emit({"event": "retry", "call": what, "error": error_text(exception)})
                    continue
                # Neither retriable nor abortable (e.g. a timeout while the
                # broker restarts): abort to be safe.
                self.abort(f"{what}: {error_text(exception)}")
                return False

    def abort(self, reason):
        """Aborts the open transaction and rewinds the consumer."""
        if self.in_txn:
            while True:
                try:
                    self.producer.abort_transaction(DEADLINE_S)
                    break
                except KafkaException as exception:
                    error = exception.args[0]
                    if error.fatal():
                        raise Fatal(f"abort_transaction: {error_text(exception)}")
                    emit({"event": "retry", "call": "abort", "error": error_text(exception)})
            emit({"event": "aborted", "txn": self.txn, "reason": reason})
        self.in_txn = False
        self.records = 0
        self.next_offsets = {}
        self.rewind_needed = True

    def rewind(self):
        """Seeks every assigned partition back to the group's committed offset."""
        assignment = self.consumer.assignment()
        if not assignment:
            self.rewind_needed = False
            return
        try:
            committed = self.consumer.committed(assignment, timeout=DEADLINE_S)
        except KafkaException as exception:
            emit({"event": "retry", "call": "committed", "error": error_text(exception)})
            return
        offsets = {}
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            offsets[str(tp.partition)] = offset
        emit({"event": "rewound", "offsets": offsets})
        self.rewind_needed = False

    # ---- rebalances ----

    def on_assign(self, _consumer, partitions):
        emit({"event": "assigned", "partitions": sorted(p.partition for p in partitions)})

    def on_revoke(self, _consumer, partitions):
        if self.in_txn:
            self.abort("partitions revoked")
        # The next assignment starts from the committed offsets anyway.
        self.rewind_needed = False
        emit({"event": "revoked", "partitions": sorted(p.partition for p in partitions)})

    # ---- the transaction ----

    def hold(self, phase):
        if self.args.hold == phase and self.committed == self.args.hold_after:
            emit({"event": "holding", "phase": phase, "txn": self.txn})
            command = self.commands.wait_line()
            if command != "go":
                sys.exit(0)  # stdin closed: the test is done with us
            self.args.hold = None

    def process(self, message):
        if not self.in_txn:
            self.txn += 1
            if not self.call("begin_transaction", self.producer.begin_transaction):
                return
            self.in_txn = True
        while True:
            try:
                self.producer.produce(
                    self.args.output,
                    key=message.key(),
                    value=b"out:" + (message.value() or b""),
                    partition=message.partition(),
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)
        self.records += 1
        self.next_offsets[message.partition()] = message.offset() + 1

    def commit(self):
        """Flushes, sends the offsets and commits the open transaction."""
        if not self.call("flush", lambda: self.producer.flush(DEADLINE_S)):
            return
        emit({"event": "produced", "txn": self.txn, "records": self.records})
        self.hold("produced")
        offsets = [
            TopicPartition(self.args.input, p, o) for p, o in sorted(self.next_offsets.items())
        ]
        sent = self.call(
            "send_offsets_to_transaction",
            lambda: self.producer.send_offsets_to_transaction(
                offsets, self.consumer.consumer_group_metadata(), DEADLINE_S
            ),
        )
        if not sent:
            return
        shown = {str(p): o for p, o in sorted(self.next_offsets.items())}
        emit({"event": "offsets_sent", "txn": self.txn, "offsets": shown})
        self.hold("offsets_sent")
        if not self.call("commit_transaction", lambda: self.producer.commit_transaction(DEADLINE_S)):
            return
        self.committed += 1
        emit({"event": "committed", "txn": self.txn, "records": self.records, "offsets": shown})
        self.in_txn = False
        self.records = 0
        self.next_offsets = {}

    def run(self):
        while True:
            try:
                self.producer.init_transactions(DEADLINE_S)
                break
            except KafkaException as exception:
                error = exception.args[0]
                if error.fatal() or not error.retriable():
                    raise Fatal(f"init_transactions: {error_text(exception)}")
                emit({"event": "retry", "call": "init_transactions", "error": error_text(exception)})
        emit({"event": "ready"})
        self.consumer.subscribe(
            [self.args.input], on_assign=self.on_assign, on_revoke=self.on_revoke
        )
        while not self.commands.closed.is_set():
            if self.rewind_needed:
                self.rewind()
            message = self.consumer.poll(0.2)
            if message is None:
                if self.in_txn and self.records:
                    self.commit()  # nothing more waiting: end the transaction here
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    emit({"event": "client_error", "error": str(message.error())})
                continue
            if self.rewind_needed:
                continue  # read before the rewind: it will come again
            self.process(message)
            if self.in_txn and self.records >= self.args.batch:
                self.commit()
        if self.in_txn:
            self.abort("stopping")
        self.consumer.close()
        self.producer.flush(DEADLINE_S)
        emit({"event": "closed"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("transactional_id")
    parser.add_argument("name")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--hold", choices=["produced", "offsets_sent"])
    parser.add_argument("--hold-after", type=int, default=0)
    parser.add_argument("--debug", default="")
    args = parser.parse_args()
    try:
        App(args, StdinCommands()).run()
    except Fatal as error:
        print(f"{sys.argv[0]} {args.name}: fatal: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
