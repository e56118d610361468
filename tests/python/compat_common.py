"""Helpers shared by the confluent-kafka compatibility scripts.

Every script takes the broker's bootstrap address as its first argument,
prints one JSON document on stdout for the Rust test to assert on, and exits
non-zero with a one-line reason on stderr on any client error.
"""

import json
import logging
import re
import sys
import time


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
