"""Starts librdkafka's built-in mock Kafka cluster (through confluent-kafka)
as a third-party broker for sediment-client's compatibility test.

Prints one line, `bootstrap HOST:PORT`, once the mock broker answers, then
keeps the cluster alive until standard input closes (the Rust test holds the
pipe; when the test ends, the pipe closes and this script exits).

Usage: mock_cluster.py [NUM_BROKERS]
"""

import sys

from confluent_kafka import Producer


def main() -> int:
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    # `test.mock.num.brokers` makes librdkafka start an in-process mock
    # cluster and point this client's bootstrap.servers at it; any other
    # client can connect to the brokers it lists in Metadata.
    producer = Producer({
        "test.mock.num.brokers": brokers,
        "log_level": 3,
    })
    metadata = producer.list_topics(timeout=10)
    if not metadata.brokers:
        print("error: the mock cluster lists no brokers", file=sys.stderr, flush=True)
        return 1
    first = metadata.brokers[min(metadata.brokers)]
    print(f"bootstrap {first.host}:{first.port}", flush=True)
    # Block until the test closes our stdin.
    sys.stdin.read()
    producer.flush(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
