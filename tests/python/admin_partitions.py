"""CreatePartitions and DeleteRecords through confluent-kafka's AdminClient.

usage: admin_partitions.py BOOTSTRAP TOPIC

Creates TOPIC with 1 partition, produces 10 records to partition 0, grows it
to 3 partitions, asks to shrink it to 2, deletes the records of partition 0
below offset 4, then asks to delete below offset 999. Prints {"grow": ...,
"shrink": ..., "partitions": n, "low_watermark": n, "beyond": ...}, where an
answer is null on success, else `ERROR_NAME: message`.
"""

import sys

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from compat_common import ClientErrors, emit, error_text, fail, wait_futures

TIMEOUT_S = 30


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    errors = ClientErrors()
    admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": errors})
    created = wait_futures(
        admin.create_topics([NewTopic(topic, 1)], operation_timeout=10), TIMEOUT_S, "create"
    )
    if created[topic] is not None:
        fail(f"create {topic}: {created[topic]}")
    producer = Producer({"bootstrap.servers": bootstrap, "error_cb": errors})
    for i in range(10):
        producer.produce(topic, value=f"record-{i}".encode(), partition=0)
    if producer.flush(TIMEOUT_S) != 0:
        fail("produce: records left unacknowledged")

    grow = wait_futures(
        admin.create_partitions([NewPartitions(topic, 3)], operation_timeout=10),
        TIMEOUT_S,
        "create_partitions",
    )[topic]
    shrink = wait_futures(
        admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=10),
        TIMEOUT_S,
        "create_partitions",
    )[topic]
    partitions = len(admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions)

    deleted = admin.delete_records([TopicPartition(topic, 0, 4)], request_timeout=TIMEOUT_S)
    low_watermark = None
    for _, future in deleted.items():
        low_watermark = future.result(timeout=TIMEOUT_S).low_watermark
    beyond = None
    for _, future in admin.delete_records(
        [TopicPartition(topic, 0, 999)], request_timeout=TIMEOUT_S
    ).items():
        try:
            future.result(timeout=TIMEOUT_S)
        except Exception as error:  # KafkaException carries the broker's error
            beyond = error_text(error)
    errors.check("admin client")
    emit(
        {
            "grow": grow,
            "shrink": shrink,
            "partitions": partitions,
            "low_watermark": low_watermark,
            "beyond": beyond,
        }
    )


if __name__ == "__main__":
    main()
