"""Produces records in one Kafka transaction with confluent-kafka and ends
it as told, for the transaction tests (tests/transactions.rs).

usage: txn_produce.py BOOTSTRAP TOPIC --prefix P --records N [--partitions K]
                      [--transactional-id ID [--timeout-ms MS]]
                      [--end commit|abort|open|hold] [--late-records L]

Record i has key "P-i" and value "P-value-i" and goes to partition i % K.
Without --transactional-id the producer is only idempotent (no
transaction, --end is ignored). Otherwise it runs init_transactions,
begin_transaction, produces the records, flushes them (so they are in the
log before the transaction ends) and then, by --end:
  commit / abort  ends the transaction and prints
                  {"delivered": [...], "ended": "commit" | "abort"};
  open            prints {"delivered": [...], "ended": "open"} and exits at
                  once without ending it (os._exit: no abort, no close, as
                  if the process had crashed);
  hold            prints {"event": "produced", "delivered": [...]}, then
                  waits for a line on stdin: "commit" or "abort". It then
                  produces L more records (prefix "P-late") in the same
                  transaction, flushes, ends it that way and prints
                  {"event": "ended", "outcome": ..., "error": null | {...},
                   "late_delivered": [...], "late_failed": [...]}; a failure
                  is reported, not fatal (a fenced producer is expected to
                  fail). EOF on stdin instead of a command exits 1.
"delivered" lists {"partition", "offset", "key", "value"} from the delivery
reports. Exits non-zero with a reason on stderr on any other failure.
"""

import argparse
import os
import sys

from confluent_kafka import KafkaException, Producer

from compat_common import ClientErrors, Sender, StdinCommands, emit, error_json, fail

DEADLINE_S = 60


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--transactional-id")
    parser.add_argument("--timeout-ms", type=int, default=60000)
    parser.add_argument("--end", choices=["commit", "abort", "open", "hold"], default="commit")
    parser.add_argument("--late-records", type=int, default=2)
    args = parser.parse_args()

    commands = StdinCommands() if args.end == "hold" else None
    errors = ClientErrors()
    config = {
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "error_cb": errors,
    }
    if args.transactional_id:
        config["transactional.id"] = args.transactional_id
        config["transaction.timeout.ms"] = args.timeout_ms
    producer = Producer(config)
    sender = Sender(producer, args.topic, args.partitions, DEADLINE_S)

    if not args.transactional_id:
        sender.send(args.prefix, args.records)
        sender.flush()
        if sender.failed:
            fail(f"delivery failed: {sender.failed[:3]}")
        errors.check("producer")
        emit({"delivered": sender.delivered, "ended": "none"})
        return

    try:
        producer.init_transactions(DEADLINE_S)
        producer.begin_transaction()
        sender.send(args.prefix, args.records)
        sender.flush()
        if sender.failed:
            fail(f"delivery failed inside the transaction: {sender.failed[:3]}")
        if args.end == "commit":
            producer.commit_transaction(DEADLINE_S)
        elif args.end == "abort":
            producer.abort_transaction(DEADLINE_S)
    except KafkaException as error:
        fail(f"transaction of {args.transactional_id}: {error_json(error.args[0])}")

    if args.end == "open":
        emit({"delivered": sender.delivered, "ended": "open"})
        os._exit(0)
    if args.end in ("commit", "abort"):
        errors.check("producer")
        emit({"delivered": sender.delivered, "ended": args.end})
        return

    emit({"event": "produced", "delivered": sender.delivered})
    command = commands.wait_line()
    if command not in ("commit", "abort"):
        fail(f"expected 'commit' or 'abort' on stdin, got {command!r}")
    produced = len(sender.delivered)
    outcome_error = None
    try:
        sender.send(f"{args.prefix}-late", args.late_records)
        # No flush() here: a fenced producer's flush() raises while it still
        # has delivery reports to hand over, which confluent-kafka cannot
        # do (SystemError). Ending the transaction flushes too.
        if command == "commit":
            producer.commit_transaction(DEADLINE_S)
        else:
            producer.abort_transaction(DEADLINE_S)
    except KafkaException as error:
        outcome_error = error_json(error.args[0])
    finally:
        producer.poll(0)  # the delivery reports of what the commit flushed
    emit(
        {
            "event": "ended",
            "outcome": command,
            "error": outcome_error,
            "late_delivered": sender.delivered[produced:],
            "late_failed": sender.failed,
            "client_errors": errors.errors,
        }
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
