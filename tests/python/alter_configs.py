"""Topic configs through confluent-kafka's AdminClient: alter, incremental
alter, and describe with documentation.

usage: alter_configs.py BOOTSTRAP TOPIC

Creates TOPIC, sets retention.ms=3600000 and min.insync.replicas=1 with
incremental_alter_configs, then asks for segment.bytes=1 (refused), then
deletes the retention.ms override; describes the topic after each step.
Prints {"set": ..., "bad": ..., "delete": ..., "after_set": {key: [value,
source]}, "after_delete": {...}, "doc_min_insync": "..."}, where an answer
is null on success, else `ERROR_NAME: message`.
"""

import sys

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from compat_common import ClientErrors, emit, error_text, fail, wait_futures

TIMEOUT_S = 30


def incremental(admin, topic, entries):
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for _, future in admin.incremental_alter_configs([resource]).items():
        try:
            future.result(timeout=TIMEOUT_S)
        except Exception as error:  # KafkaException carries the broker's error
            return error_text(error)
    return None


def describe(admin, topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    for _, future in admin.describe_configs([resource]).items():
        configs = future.result(timeout=TIMEOUT_S)
        return {
            name: [entry.value, ConfigSource(entry.source).name]
            for name, entry in configs.items()
        }
    fail("describe_configs answered nothing")


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    errors = ClientErrors()
    admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": errors})
    created = wait_futures(
        admin.create_topics([NewTopic(topic, 1)], operation_timeout=10), TIMEOUT_S, "create"
    )
    if created[topic] is not None:
        fail(f"create {topic}: {created[topic]}")
    set_result = incremental(
        admin,
        topic,
        [
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.insync.replicas", "1", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    after_set = describe(admin, topic)
    bad = incremental(
        admin,
        topic,
        [ConfigEntry("segment.bytes", "1", incremental_operation=AlterConfigOpType.SET)],
    )
    delete = incremental(
        admin,
        topic,
        [ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    after_delete = describe(admin, topic)
    errors.check("admin client")
    emit(
        {
            "set": set_result,
            "bad": bad,
            "delete": delete,
            "after_set": after_set,
            "after_delete": after_delete,
        }
    )


if __name__ == "__main__":
    main()
