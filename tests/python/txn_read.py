"""Reads a topic from the beginning with confluent-kafka at one isolation
level, for the transaction tests (tests/transactions.rs).

usage: txn_read.py BOOTSTRAP TOPIC --partitions K
                   --isolation read_committed|read_uncommitted

An assign()-only consumer (no group, no commits) reads partitions 0..K-1
until librdkafka reports the end of each one: the last stable offset for
read_committed, the high watermark for read_uncommitted. Prints
{"records": [{"partition", "offset", "key", "value"}, ...],
 "positions": {"P": next offset}, "ends": {"P": offset}}
where "ends" is AdminClient.list_offsets(latest) at the same isolation level,
asked after the read. Exits non-zero with a reason on stderr on any failure.
"""

import argparse

from compat_common import EndReader, emit, end_offsets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--isolation", required=True)
    args = parser.parse_args()

    partitions = list(range(args.partitions))
    reader = EndReader(args.bootstrap, args.topic, partitions, args.isolation)
    records = reader.read_until_end()
    positions = reader.positions()
    reader.close()
    ends = end_offsets(args.bootstrap, args.topic, partitions, args.isolation)
    emit(
        {
            "records": records,
            "positions": {str(p): o for p, o in positions.items()},
            "ends": {str(p): o for p, o in ends.items()},
        }
    )


if __name__ == "__main__":
    main()
