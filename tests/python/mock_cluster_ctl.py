"""Starts librdkafka's mock Kafka cluster (the librdkafka that confluent-kafka
bundles, driven through ctypes) with a small control channel, for
sediment-client's consumer-group tests.

Prints one line, `bootstrap HOST:PORT[,HOST:PORT...]`, once the cluster
runs; then reads commands from standard input, one per line, and answers
each with `ok` (or `error: ...`):

    rebalance-delay MS            group.initial.rebalance.delay.ms (librdkafka's default 3000)
    topic NAME PARTITIONS         create a topic (replication factor 1)
    coordinator GROUP BROKER_ID   make BROKER_ID the coordinator of GROUP
    errors API_KEY CODE [CODE..]  the next requests of API_KEY fail with CODEs, in order

The cluster stops when standard input closes (the Rust test holds the pipe).

Usage: mock_cluster_ctl.py [NUM_BROKERS]
"""

import ctypes
import ctypes.util
import glob
import os
import sys

import confluent_kafka


def load_librdkafka() -> ctypes.CDLL:
    """The librdkafka confluent-kafka uses: its bundled copy, else the system one."""
    package = os.path.dirname(confluent_kafka.__file__)
    bundled = glob.glob(os.path.join(package, os.pardir, "confluent_kafka.libs", "librdkafka*.so*"))
    path = bundled[0] if bundled else ctypes.util.find_library("rdkafka")
    if not path:
        raise RuntimeError("librdkafka not found next to confluent_kafka nor on the system")
    lib = ctypes.CDLL(path)
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_coordinator_set.restype = ctypes.c_int
    lib.rd_kafka_mock_coordinator_set.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [
        ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


def main() -> int:
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    lib = load_librdkafka()
    conf = lib.rd_kafka_conf_new()
    errstr = ctypes.create_string_buffer(512)
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
    # A producer handle only hosts the mock cluster's thread.
    rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))
    if not rk:
        print(f"error: rd_kafka_new: {errstr.value.decode()}", file=sys.stderr, flush=True)
        return 1
    cluster = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not cluster:
        print("error: rd_kafka_mock_cluster_new failed", file=sys.stderr, flush=True)
        return 1
    print(f"bootstrap {lib.rd_kafka_mock_cluster_bootstraps(cluster).decode()}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "rebalance-delay" and len(words) == 2:
                lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, int(words[1]))
            elif words[0] == "topic" and len(words) == 3:
                err = lib.rd_kafka_mock_topic_create(cluster, words[1].encode(), int(words[2]), 1)
                if err:
                    raise ValueError(f"rd_kafka_mock_topic_create returned {err}")
            elif words[0] == "coordinator" and len(words) == 3:
                err = lib.rd_kafka_mock_coordinator_set(
                    cluster, b"group", words[1].encode(), int(words[2]))
                if err:
                    raise ValueError(f"rd_kafka_mock_coordinator_set returned {err}")
            elif words[0] == "errors" and len(words) >= 3:
                codes = [int(c) for c in words[2:]]
                array = (ctypes.c_int * len(codes))(*codes)
                lib.rd_kafka_mock_push_request_errors_array(
                    cluster, int(words[1]), len(codes), array)
            else:
                raise ValueError(f"unknown command: {line.strip()}")
            print("ok", flush=True)
        except ValueError as e:
            print(f"error: {e}", flush=True)
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(rk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
