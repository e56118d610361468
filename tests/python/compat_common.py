"""Helpers shared by the confluent-kafka compatibility scripts.

Every script takes the broker's bootstrap address as its first argument,
prints one JSON document on stdout for the Rust test to assert on, and exits
non-zero with a one-line reason on stderr on any client error.
"""

import json
import logging
import re
import sys
import threading
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec


def fail(message):
    """Exits non-zero with a clear message (the Rust test prints it)."""
    print(f"{sys.argv[0]}: {message}", file=sys.stderr)
    sys.exit(1)


def emit(document):
    """Prints the result document for the Rust test."""
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def hexed(data):
    """Bytes as hex, None as None (JSON null): keys, values and headers may be null."""
    return None if data is None else data.hex()


def headers_json(headers):
    """A message's headers as [[name, hex-or-null], ...], in order."""
    return [[name, hexed(value)] for name, value in (headers or [])]


class ClientErrors:
    """An `error_cb`: remembers every error librdkafka reports."""

    def __init__(self):
        self.errors = []

    def __call__(self, error):
        self.errors.append(str(error))

    def check(self, who):
        if self.errors:
            fail(f"{who} reported client errors: {self.errors[:5]}")


class RequestLog(logging.Handler):
    """Collects librdkafka `debug=protocol` lines and counts the requests it sent."""

    SENT = re.compile(r"Sent (\w+)Request \(v(\d+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.sent = {}

    def emit(self, record):
        match = self.SENT.search(record.getMessage())
        if match:
            key = f"{match.group(1)} v{match.group(2)}"
            self.sent[key] = self.sent.get(key, 0) + 1

    def logger(self, name):
        log = logging.getLogger(name)
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(self)
        return log


def wait_futures(futures, timeout, what):
    """Results of an AdminClient future map as {name: None | error string}."""
    deadline = time.monotonic() + timeout
    outcome = {}
    for name, future in futures.items():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            future.result(timeout=remaining)
            outcome[str(name)] = None
        except Exception as error:  # KafkaException carries the broker's error
            if type(error).__name__ == "TimeoutError":
                fail(f"{what} {name}: no answer within {timeout} s")
            outcome[str(name)] = error_text(error)
    return outcome


def error_text(error):
    """`CODE_NAME: message` of a KafkaException, else str(error)."""
    args = getattr(error, "args", ())
    if args and hasattr(args[0], "name"):
        kafka_error = args[0]
        return f"{kafka_error.name()}: {kafka_error.str()}"
    return str(error)


def error_json(error):
    """A KafkaError with the flags the tests look at."""
    return {
        "name": error.name(),
        "code": error.code(),
        "text": error.str(),
        "fatal": error.fatal(),
        "retriable": error.retriable(),
        "txn_requires_abort": error.txn_requires_abort(),
    }


class Sender:
    """Produces records "PREFIX-i" (value "PREFIX-value-i") to partition
    i % partitions and collects their delivery reports."""

    def __init__(self, producer, topic, partitions, deadline_s=60):
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.deadline_s = deadline_s
        self.delivered = []
        self.failed = []

    def send(self, prefix, count):
        for i in range(count):
            key = f"{prefix}-{i}"

            def report(error, message, key=key):
                if error is not None:
                    self.failed.append({"key": key, "error": error_json(error)})
                    return
                self.delivered.append(
                    {
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "key": key,
                        "value": message.value().decode(),
                    }
                )

            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        key=key.encode(),
                        value=f"{prefix}-value-{i}".encode(),
                        partition=i % self.partitions,
                        on_delivery=report,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)

    def flush(self):
        left = self.producer.flush(self.deadline_s)
        if left:
            fail(f"{left} records still undelivered after {self.deadline_s} s")


def isolation_config(isolation):
    """Checks an isolation level named on the command line."""
    if isolation not in ("read_committed", "read_uncommitted"):
        fail(f"unknown isolation level {isolation!r}")
    return isolation


def end_offsets(bootstrap, topic, partitions, isolation, timeout=30):
    """{partition: latest offset} as a consumer with `isolation` sees it
    (AdminClient.list_offsets): the last stable offset for read_committed,
    the high watermark for read_uncommitted."""
    level = {
        "read_committed": IsolationLevel.READ_COMMITTED,
        "read_uncommitted": IsolationLevel.READ_UNCOMMITTED,
    }[isolation_config(isolation)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions},
        isolation_level=level,
        request_timeout=timeout,
    )
    ends = {}
    for tp, future in futures.items():
        try:
            ends[tp.partition] = future.result(timeout=timeout).offset
        except Exception as error:  # KafkaException carries the broker's error
            fail(f"list_offsets {isolation} of {topic}-{tp.partition}: {error_text(error)}")
    return ends


def record_json(message):
    """A consumed record as the scripts print it (keys and values are text)."""
    return {
        "partition": message.partition(),
        "offset": message.offset(),
        "key": None if message.key() is None else message.key().decode(),
        "value": None if message.value() is None else message.value().decode(),
    }


class EndReader:
    """An assign()-only consumer of a topic's partitions from the beginning
    with an isolation level (no group membership, no commits). Its "end" is
    what librdkafka reports as the partition's end: the last stable offset
    for read_committed, the high watermark for read_uncommitted."""

    def __init__(self, bootstrap, topic, partitions, isolation):
        self.topic = topic
        self.partitions = sorted(partitions)
        self.errors = ClientErrors()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # Required by the client; only assign() is used.
                "group.id": "sediment-txn-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "error",
                "enable.partition.eof": True,
                "isolation.level": isolation_config(isolation),
                "error_cb": self.errors,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def read_until_end(self, deadline_s=60):
        """Every record handed over until each partition reported its end
        (partition EOF) with nothing after it."""
        records = []
        at_end = set()
        deadline = time.monotonic() + deadline_s
        while at_end != set(self.partitions):
            if time.monotonic() > deadline:
                fail(
                    f"reading {self.topic}: {len(records)} records, partitions at end "
                    f"{sorted(at_end)} of {self.partitions} after {deadline_s} s"
                )
            message = self.consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    continue
                fail(f"consumer error reading {self.topic}: {message.error()}")
            at_end.discard(message.partition())
            records.append(record_json(message))
        self.errors.check(f"reader of {self.topic}")
        return records

    def positions(self):
        """{partition: next offset to read}."""
        found = self.consumer.position([TopicPartition(self.topic, p) for p in self.partitions])
        return {tp.partition: tp.offset for tp in found}

    def close(self):
        self.consumer.close()


class StdinCommands:
    """Lines written to stdin by the Rust test, one command each; EOF means
    "stop". A thread reads them so the script can keep polling its clients."""

    def __init__(self):
        self.lines = []
        self.closed = threading.Event()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in sys.stdin:
            with self.changed:
                self.lines.append(line.strip())
                self.changed.notify_all()
        with self.changed:
            self.closed.set()
            self.changed.notify_all()

    def wait_line(self):
        """The next command, or None once stdin is closed."""
        with self.changed:
            while not self.lines and not self.closed.is_set():
                self.changed.wait()
            return self.lines.pop(0) if self.lines else None
