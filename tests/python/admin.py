"""Topic administration through confluent-kafka's AdminClient.

usage: admin.py BOOTSTRAP lifecycle PREFIX
       admin.py BOOTSTRAP refusals PREFIX

lifecycle: creates PREFIX-plain (2 partitions) and PREFIX-retention
(retention.ms=3600000), lists topics, describes the configs of both, deletes
PREFIX-retention and lists topics again. Prints {"created": {...},
"listed_after_create": {...}, "configs": {...}, "deleted": {...},
"listed_after_delete": {...}}.

refusals: creates PREFIX-shred (cleanup.policy=shred), PREFIX-rf3
(replication factor 3) and PREFIX-compact (cleanup.policy=compact, which is
valid), each in its own request, then lists topics. Prints
{"created": {topic: error or null}, "listed": {...}}.

A create or delete answer is null on success, else `ERROR_NAME: message`.
Exits non-zero on any client error other than those answers.
"""

import sys

from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from compat_common import ClientErrors, emit, fail, wait_futures

TIMEOUT_S = 30


def listed(admin):
    """{topic: partition count} from a fresh Metadata request."""
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    for name, topic in metadata.topics.items():
        if topic.error is not None:
            fail(f"list_topics reports {name}: {topic.error}")
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def create(admin, topics):
    return wait_futures(
        admin.create_topics(topics, operation_timeout=10), TIMEOUT_S, "create_topics"
    )


def describe(admin, names):
    """{topic: {config: {"value", "source" (a ConfigSource name), "is_default"}}}."""
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names],
        request_timeout=TIMEOUT_S,
    )
    described = {}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=TIMEOUT_S)
        except Exception as error:
            fail(f"describe_configs {resource.name}: {error}")
        described[resource.name] = {
            name: {
                "value": entry.value,
                "source": ConfigSource(entry.source).name,
                "is_default": entry.is_default,
            }
            for name, entry in entries.items()
        }
    return described


def lifecycle(admin, prefix):
    plain = f"{prefix}-plain"
    retention = f"{prefix}-retention"
    created = create(
        admin,
        [
            NewTopic(plain, num_partitions=2, replication_factor=1),
            NewTopic(
                retention,
                num_partitions=1,
                replication_factor=1,
                config={"retention.ms": "3600000"},
            ),
        ],
    )
    listed_after_create = listed(admin)
    configs = describe(admin, [plain, retention])
    deleted = wait_futures(
        admin.delete_topics([retention], operation_timeout=10), TIMEOUT_S, "delete_topics"
    )
    listed_after_delete = listed(admin)
    return {
        "created": created,
        "listed_after_create": listed_after_create,
        "configs": configs,
        "deleted": deleted,
        "listed_after_delete": listed_after_delete,
    }


def refusals(admin, prefix):
    created = {}
    created.update(
        create(
            admin,
            [
                NewTopic(
                    f"{prefix}-shred",
                    num_partitions=1,
                    replication_factor=1,
                    config={"cleanup.policy": "shred"},
                )
            ],
        )
    )
    created.update(create(admin, [NewTopic(f"{prefix}-rf3", num_partitions=1, replication_factor=3)]))
    created.update(
        create(
            admin,
            [
                NewTopic(
                    f"{prefix}-compact",
                    num_partitions=1,
                    replication_factor=1,
                    config={"cleanup.policy": "compact"},
                )
            ],
        )
    )
    return {"created": created, "listed": listed(admin)}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("lifecycle", "refusals"):
        fail("usage: admin.py BOOTSTRAP lifecycle|refusals PREFIX")
    bootstrap, mode, prefix = sys.argv[1:]
    errors = ClientErrors()
    admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": errors})
    result = lifecycle(admin, prefix) if mode == "lifecycle" else refusals(admin, prefix)
    errors.check("admin client")
    emit(result)


if __name__ == "__main__":
    main()
