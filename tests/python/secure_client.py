"""One confluent-kafka (librdkafka) client action against a secured broker,
for tests/security_tls_sasl.rs and tests/security_acl.rs.

usage: secure_client.py < REQUEST.json

The request comes on stdin, never in the arguments, because it holds
passwords: {"action": ..., "config": {librdkafka settings: bootstrap.servers,
security.protocol, sasl.*, ssl.*}, ...action's fields}. Prints one JSON
document. Errors the broker or the client report are part of the result
(code as librdkafka's KafkaError.code(): Kafka's error code for broker
errors, negative for local ones, and its name), not a failure of the script;
the script exits non-zero only when the request itself is unusable.

actions:
  produce        topic, messages, [prefix], [stop_on_client_error]:
                 produces `messages` self-verifying values
                 PREFIX-000123-<fnv1a64 hex> with acks=all; prints
                 {"delivered": [{"seq", "partition", "offset"}],
                  "failed": [{"seq", "code", "name"}], "client_errors": [...],
                  "stopped": "all_reported" | "client_error" | "deadline"}
  consume        topic, messages, [partition]: assign() from the beginning
                 (no group membership), reads until `messages` arrived or an
                 error (GROUP_AUTHORIZATION_FAILED for its unused group.id is
                 tolerated: "tolerated_errors");
                 prints {"values": [...], "errors": [...]}
  group_consume  topic, group, messages: subscribe() in group `group`;
                 prints {"values": [...], "errors": [...]}
  create_topics  topics: [names] (1 partition each); prints
                 {"results": {name: null | {"code", "name"}}}
  metadata       [topic]: all topics, or one; prints
                 {"topics": {name: null | {"code", "name"}}}
  create_acls    acls: [{resource_type, name, pattern, principal, host,
                 operation, permission}] (enum names as confluent-kafka's);
                 prints {"results": [null | {"code", "name", "str"}]}
  describe_acls  prints {"acls": [{...binding...}]} or {"error": {...}}
  delete_acls    acls: [filters, same fields]; prints
                 {"results": [{"deleted": n} | {"code", "name", "str"}]}
  transaction    transactional_id, topic, [messages]: init, produce, commit;
                 prints {"step": where it stopped, "error": null | {...}}
  alter_scram    users: [{"name", "mechanism", "password"}]; prints
                 {"results": {name: null | {"code", "name", "str"}}}
Every action waits at most `timeout_s` (default 60) seconds.
"""

import json
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)


def fail(message):
    print(f"secure_client.py: {message}", file=sys.stderr)
    sys.exit(2)


def emit(document):
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def error_json(error):
    """A KafkaError (or an exception holding one) as {"code", "name", "str"}."""
    if isinstance(error, KafkaException) and error.args:
        error = error.args[0]
    if isinstance(error, KafkaError):
        return {
            "code": error.code(),
            "name": error.name(),
            "str": error.str(),
            "fatal": error.fatal(),
        }
    return {"code": None, "name": type(error).__name__, "str": str(error), "fatal": False}


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def value_of(prefix, seq):
    body = f"{prefix}-{seq:06}"
    return f"{body}-{fnv1a(body.encode()):016x}"


class Errors:
    """An `error_cb`: every error librdkafka reports, in order."""

    def __init__(self):
        self.seen = []

    def __call__(self, error):
        self.seen.append(error_json(error))


def produce(request, config, deadline):
    topic = request["topic"]
    count = int(request["messages"])
    prefix = request.get("prefix", "secure")
    stop_on_client_error = request.get("stop_on_client_error", False)
    errors = Errors()
    config = dict(config)
    config.setdefault("acks", "all")
    config.setdefault("message.timeout.ms", int(request.get("timeout_s", 60) * 1000))
    config["error_cb"] = errors
    producer = Producer(config)
    delivered, failed = [], []

    def report(seq):
        def on_delivery(error, message):
            if error is not None:
                failed.append(dict(error_json(error), seq=seq))
            else:
                delivered.append(
                    {"seq": seq, "partition": message.partition(), "offset": message.offset()}
                )

        return on_delivery

    stopped = None
    for seq in range(count):
        while True:
            try:
                producer.produce(topic, value=value_of(prefix, seq).encode(), on_delivery=report(seq))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if stop_on_client_error and errors.seen:
            stopped = "client_error"
            break
    while stopped is None:
        if len(delivered) + len(failed) >= count:
            stopped = "all_reported"
        elif stop_on_client_error and errors.seen:
            stopped = "client_error"
        elif time.monotonic() > deadline:
            stopped = "deadline"
        else:
            producer.poll(0.1)
    # Whatever is still queued is abandoned: the result says what was seen.
    producer.purge()
    producer.flush(5)
    return {
        "delivered": delivered,
        "failed": failed,
        "client_errors": errors.seen,
        "stopped": stopped,
    }


def consume_loop(consumer, count, deadline, errors, tolerated=()):
    """Reads until `count` values, the deadline, or an error not in
    `tolerated` (those are kept in "tolerated_errors" and reading goes on)."""
    values, consume_errors, tolerated_errors = [], [], []
    while len(values) < count and time.monotonic() < deadline:
        if errors.seen and any(e["fatal"] or e["code"] in FATAL_LOCAL for e in errors.seen):
            break
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                continue
            if message.error().code() in tolerated:
                if len(tolerated_errors) < 10:
                    tolerated_errors.append(error_json(message.error()))
                continue
            consume_errors.append(error_json(message.error()))
            break
        values.append(None if message.value() is None else message.value().decode("utf-8", "replace"))
    return {
        "values": values,
        "errors": consume_errors,
        "tolerated_errors": tolerated_errors,
        "client_errors": errors.seen,
    }


# Local errors after which a consumer cannot get anywhere.
FATAL_LOCAL = {
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
}


def consume(request, config, deadline):
    errors = Errors()
    config = dict(config)
    config.update(
        {
            "group.id": "secure-client-assign-only",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "error_cb": errors,
        }
    )
    consumer = Consumer(config)
    partition = int(request.get("partition", 0))
    consumer.assign([TopicPartition(request["topic"], partition, OFFSET_BEGINNING)])
    try:
        # The Python client insists on a group.id, and librdkafka then looks
        # its coordinator up even though this consumer never joins or
        # commits: a principal without DESCRIBE on that group gets
        # GROUP_AUTHORIZATION_FAILED for it (as from Kafka) and reads on.
        return consume_loop(
            consumer,
            int(request["messages"]),
            deadline,
            errors,
            tolerated=(KafkaError.GROUP_AUTHORIZATION_FAILED,),
        )
    finally:
        consumer.close()


def group_consume(request, config, deadline):
    errors = Errors()
    config = dict(config)
    config.update(
        {
            "group.id": request["group"],
            "enable.auto.commit": True,
            "auto.offset.reset": "earliest",
            "error_cb": errors,
        }
    )
    consumer = Consumer(config)
    consumer.subscribe([request["topic"]])
    try:
        return consume_loop(consumer, int(request["messages"]), deadline, errors)
    finally:
        consumer.close()


def admin_client(config):
    errors = Errors()
    config = dict(config)
    config["error_cb"] = errors
    return AdminClient(config), errors


def create_topics(request, config, deadline):
    admin, errors = admin_client(config)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1) for name in request["topics"]],
        operation_timeout=10,
        request_timeout=max(1, deadline - time.monotonic()),
    )
    results = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(1, deadline - time.monotonic()))
            results[name] = None
        except Exception as error:  # noqa: BLE001 - reported, not raised
            results[name] = error_json(error)
    return {"results": results, "client_errors": errors.seen}


def metadata(request, config, deadline):
    admin, errors = admin_client(config)
    try:
        listed = admin.list_topics(topic=request.get("topic"), timeout=max(1, deadline - time.monotonic()))
    except Exception as error:  # noqa: BLE001
        return {"error": error_json(error), "client_errors": errors.seen}
    topics = {
        name: None if topic.error is None else error_json(topic.error)
        for name, topic in listed.topics.items()
    }
    return {"topics": topics, "client_errors": errors.seen}


def binding_args(acl):
    return (
        ResourceType[acl["resource_type"]],
        acl["name"],
        ResourcePatternType[acl.get("pattern", "LITERAL")],
        acl["principal"],
        acl.get("host", "*"),
        AclOperation[acl["operation"]],
        AclPermissionType[acl.get("permission", "ALLOW")],
    )


def binding_json(binding):
    return {
        "resource_type": binding.restype.name,
        "name": binding.name,
        "pattern": binding.resource_pattern_type.name,
        "principal": binding.principal,
        "host": binding.host,
        "operation": binding.operation.name,
        "permission": binding.permission_type.name,
    }


def create_acls(request, config, deadline):
    admin, errors = admin_client(config)
    bindings = [AclBinding(*binding_args(acl)) for acl in request["acls"]]
    futures = admin.create_acls(bindings, request_timeout=max(1, deadline - time.monotonic()))
    results = []
    for binding in bindings:
        try:
            futures[binding].result(timeout=max(1, deadline - time.monotonic()))
            results.append(None)
        except Exception as error:  # noqa: BLE001
            results.append(error_json(error))
    return {"results": results, "client_errors": errors.seen}


def describe_acls(request, config, deadline):
    admin, errors = admin_client(config)
    match_all = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        found = admin.describe_acls(match_all, request_timeout=max(1, deadline - time.monotonic())).result(
            timeout=max(1, deadline - time.monotonic())
        )
    except Exception as error:  # noqa: BLE001
        return {"error": error_json(error), "client_errors": errors.seen}
    return {"acls": [binding_json(b) for b in found], "client_errors": errors.seen}


def delete_acls(request, config, deadline):
    admin, errors = admin_client(config)
    filters = [AclBindingFilter(*binding_args(acl)) for acl in request["acls"]]
    futures = admin.delete_acls(filters, request_timeout=max(1, deadline - time.monotonic()))
    results = []
    for acl_filter in filters:
        try:
            deleted = futures[acl_filter].result(timeout=max(1, deadline - time.monotonic()))
            results.append({"deleted": len(deleted)})
        except Exception as error:  # noqa: BLE001
            results.append(error_json(error))
    return {"results": results, "client_errors": errors.seen}


def transaction(request, config, deadline):
    """init_transactions, produce `messages`, commit: the first error, or none."""
    errors = Errors()
    config = dict(config)
    config["transactional.id"] = request["transactional_id"]
    config["error_cb"] = errors
    producer = Producer(config)
    step = "init_transactions"
    try:
        producer.init_transactions(max(1, deadline - time.monotonic()))
        step = "begin_transaction"
        producer.begin_transaction()
        step = "produce"
        for seq in range(int(request.get("messages", 1))):
            producer.produce(request["topic"], value=value_of("txn", seq).encode())
        step = "commit_transaction"
        producer.commit_transaction(max(1, deadline - time.monotonic()))
    except Exception as error:  # noqa: BLE001
        return {"step": step, "error": error_json(error), "client_errors": errors.seen}
    return {"step": "committed", "error": None, "client_errors": errors.seen}


def alter_scram(request, config, deadline):
    """Upserts SCRAM credentials: users [{"name", "mechanism", "password"}]."""
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin, errors = admin_client(config)
    upsertions = [
        UserScramCredentialUpsertion(
            user["name"],
            ScramCredentialInfo(ScramMechanism[user["mechanism"].replace("-", "_")], 4096),
            user["password"].encode(),
        )
        for user in request["users"]
    ]
    futures = admin.alter_user_scram_credentials(
        upsertions, request_timeout=max(1, deadline - time.monotonic())
    )
    results = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(1, deadline - time.monotonic()))
            results[name] = None
        except Exception as error:  # noqa: BLE001
            results[name] = error_json(error)
    return {"results": results, "client_errors": errors.seen}


ACTIONS = {
    "transaction": transaction,
    "alter_scram": alter_scram,
    "produce": produce,
    "consume": consume,
    "group_consume": group_consume,
    "create_topics": create_topics,
    "metadata": metadata,
    "create_acls": create_acls,
    "describe_acls": describe_acls,
    "delete_acls": delete_acls,
}


def main():
    try:
        request = json.load(sys.stdin)
    except ValueError as error:
        fail(f"the request on stdin is not JSON: {error}")
    action = ACTIONS.get(request.get("action"))
    if action is None:
        fail(f"unknown action {request.get('action')!r}; one of {sorted(ACTIONS)}")
    deadline = time.monotonic() + float(request.get("timeout_s", 60))
    emit(action(request, request["config"], deadline))


if __name__ == "__main__":
    main()
