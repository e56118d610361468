"""Zombie fencing with confluent-kafka, for the transaction tests
(tests/transactions.rs): two producer instances with one transactional.id.

usage: txn_fencing.py BOOTSTRAP TOPIC --records N

Two scenarios, each with its own transactional id, on partition 0 of TOPIC
(which must exist):
  mid_transaction ("fence-mid"): the zombie begins a transaction, produces
    N records "zombie-open-i" and flushes them; the successor's
    init_transactions fences it (and aborts that transaction); the successor
    commits N records "successor-i"; the zombie then produces N records
    "zombie-open-late-i" and tries to commit.
  between_transactions ("fence-between"): the zombie commits N records
    "early-i"; the successor's init_transactions fences it; the zombie
    begins a new transaction, produces N records "zombie-i" and tries to
    commit; then the successor commits N records "late-successor-i".
Prints {"SCENARIO": {"zombie_error": {...} | null, "zombie_delivered": [...],
"zombie_failed": [...], "successor_delivered": [...]}} where zombie_error
is the KafkaError the zombie's last produce + commit raised (null if it
succeeded), with its name, code and fatal / retriable /
txn_requires_abort flags. Exits non-zero on any other failure.
"""

import argparse

from confluent_kafka import KafkaException, Producer

from compat_common import Sender, emit, error_json, fail

DEADLINE_S = 60


def producer(bootstrap, transactional_id):
    """A transactional producer whose client errors are printed by the
    scenario (the zombie's are expected)."""
    client_errors = []
    instance = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
            "error_cb": lambda error: client_errors.append(str(error)),
        }
    )
    instance.init_transactions(DEADLINE_S)
    return instance, client_errors


def committed(sender, prefix, count):
    """Produces `count` records in a transaction and commits it."""
    sender.producer.begin_transaction()
    sender.send(prefix, count)
    sender.flush()
    if sender.failed:
        fail(f"delivery of {prefix} failed: {sender.failed[:3]}")
    sender.producer.commit_transaction(DEADLINE_S)


def zombie_attempt(sender, prefix, count, begin):
    """The fenced instance's produce + commit; the error it raised, if any."""
    try:
        if begin:
            sender.producer.begin_transaction()
        sender.send(prefix, count)
        sender.producer.commit_transaction(DEADLINE_S)
    except KafkaException as error:
        return error_json(error.args[0])
    finally:
        # The delivery reports of what the commit flushed. (No flush()
        # before the commit: a fenced producer's flush() raises while it
        # still has delivery reports to hand over, which confluent-kafka
        # cannot do: SystemError.)
        sender.producer.poll(0)
    return None


def mid_transaction(args):
    zombie, zombie_errors = producer(args.bootstrap, "fence-mid")
    zombie_sender = Sender(zombie, args.topic, 1)
    zombie.begin_transaction()
    zombie_sender.send("zombie-open", args.records)
    zombie_sender.flush()
    if zombie_sender.failed:
        fail(f"delivery of zombie-open failed: {zombie_sender.failed[:3]}")

    successor, successor_errors = producer(args.bootstrap, "fence-mid")
    successor_sender = Sender(successor, args.topic, 1)
    committed(successor_sender, "successor", args.records)

    error = zombie_attempt(zombie_sender, "zombie-open-late", args.records, begin=False)
    return {
        "zombie_error": error,
        "zombie_delivered": zombie_sender.delivered,
        "zombie_failed": zombie_sender.failed,
        "zombie_client_errors": zombie_errors,
        "successor_delivered": successor_sender.delivered,
        "successor_client_errors": successor_errors,
    }


def between_transactions(args):
    zombie, zombie_errors = producer(args.bootstrap, "fence-between")
    zombie_sender = Sender(zombie, args.topic, 1)
    committed(zombie_sender, "early", args.records)

    successor, successor_errors = producer(args.bootstrap, "fence-between")
    successor_sender = Sender(successor, args.topic, 1)

    error = zombie_attempt(zombie_sender, "zombie", args.records, begin=True)
    committed(successor_sender, "late-successor", args.records)
    return {
        "zombie_error": error,
        "zombie_delivered": zombie_sender.delivered,
        "zombie_failed": zombie_sender.failed,
        "zombie_client_errors": zombie_errors,
        "successor_delivered": successor_sender.delivered,
        "successor_client_errors": successor_errors,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--records", type=int, default=5)
    args = parser.parse_args()
    try:
        result = {
            "mid_transaction": mid_transaction(args),
            "between_transactions": between_transactions(args),
        }
    except KafkaException as error:
        fail(f"unexpected client error: {error_json(error.args[0])}")
    emit(result)


if __name__ == "__main__":
    main()
