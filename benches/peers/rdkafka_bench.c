/*
 * rdkafka_bench: produce or consume throughput through librdkafka, against a
 * real broker or against librdkafka's own in-process mock cluster, with the
 * same client settings either way. Used by scripts/bench-rdkafka to ask
 * whether the broker is ever the limit of a librdkafka client.
 *
 *   rdkafka_bench produce|consume --bootstrap HOST:PORT|mock --topic T
 *                 --messages N --size S [--partitions P]
 *
 * produce: N messages of S bytes (one shared payload buffer, not copied),
 *   acks=all linger.ms=5 batch.size=1048576, idempotence off; fails on any
 *   delivery error. Timed from the first produce call to the last delivery
 *   report.
 * consume: N messages from the beginning of the topic's partitions, assigned
 *   explicitly (no group management, nothing committed). Timed from the
 *   first message to the Nth. Against a real broker the topic must already
 *   hold N messages (run produce first). fetch.max.bytes and
 *   max.partition.fetch.bytes keep their defaults; fetch.wait.max.ms=10 and
 *   queued.min.messages / queued.max.messages.kbytes at their maxima, for
 *   the reasons given in consume().
 *
 * --bootstrap mock creates a mock cluster (rdkafka_mock.h) in this process.
 * The mock keeps only about 5 MiB of message sets per partition (older sets
 * are dropped on append), so consume against mock fills each partition with
 * a window that fits (~4 MiB) and, when N is larger than the window, reads it
 * in passes, seeking back to offset 0 after each; the time between the end
 * of one pass and the first message of the next is left out of "seconds"
 * and reported as "gap_seconds" (so the mock figure is, if anything,
 * flattering to the mock).
 *
 * Prints one line of JSON on stdout; diagnostics on stderr; exit 1 on
 * failure, 2 on bad usage.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Bytes of record data (payload plus per-record framing) put in each mock
 * partition: below the mock's 5 MiB per-partition limit. */
#define MOCK_WINDOW_BYTES (4 * 1024 * 1024)
/* Per-record framing assumed when sizing the mock window (varints,
 * attributes, batch headers); generous on purpose. */
#define MOCK_RECORD_OVERHEAD 24

#define METADATA_TIMEOUT_MS 30000
#define FLUSH_TIMEOUT_MS 600000
#define IDLE_TIMEOUT_S 60.0

static const char *prog = "rdkafka_bench";

static void die(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static void usage(const char *why) {
        fprintf(stderr,
                "%s: %s\n"
                "usage: %s produce|consume --bootstrap HOST:PORT|mock "
                "--topic T --messages N --size S [--partitions P]\n",
                prog, why, prog);
        exit(2);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long parse_count(const char *flag, const char *value) {
        char *end;
        long long v;
        errno = 0;
        v     = strtoll(value, &end, 10);
        if (errno || *end || v <= 0) {
                fprintf(stderr, "%s: %s wants a positive integer, not `%s`\n",
                        prog, flag, value);
                usage("bad value");
        }
        return v;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
        char err[512];
        if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK)
                die("config %s=%s: %s", key, value, err);
}

/* RDKAFKA_BENCH_DEBUG=fetch,msg (librdkafka's `debug` contexts) for
 * looking into a surprising figure; unset for measurements. */
static rd_kafka_conf_t *new_conf(void) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const char *debug     = getenv("RDKAFKA_BENCH_DEBUG");
        if (debug && *debug)
                set(conf, "debug", debug);
        return conf;
}

/* --- mock cluster ----------------------------------------------------------- */

struct mock {
        rd_kafka_t *owner; /* the handle the cluster hangs off */
        rd_kafka_mock_cluster_t *cluster;
        char bootstraps[256];
};

static void mock_start(struct mock *m, const char *topic, int partitions) {
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_resp_err_t rerr;

        /* The owner never connects anywhere; keep it quiet about that. */
        set(conf, "log_level", "3");
        m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!m->owner)
                die("mock owner handle: %s", err);
        m->cluster = rd_kafka_mock_cluster_new(m->owner, 1);
        if (!m->cluster)
                die("rd_kafka_mock_cluster_new failed");
        snprintf(m->bootstraps, sizeof(m->bootstraps), "%s",
                 rd_kafka_mock_cluster_bootstraps(m->cluster));
        rerr = rd_kafka_mock_topic_create(m->cluster, topic, partitions, 1);
        if (rerr)
                die("mock topic %s: %s", topic, rd_kafka_err2str(rerr));
}

static void mock_stop(struct mock *m) {
        rd_kafka_mock_cluster_destroy(m->cluster);
        rd_kafka_destroy(m->owner);
}

/* --- produce ---------------------------------------------------------------- */

struct produce_state {
        long long expected;
        long long delivered;
        long long failed;
        char first_error[512];
        double last_report;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                        void *opaque) {
        struct produce_state *st = opaque;
        (void)rk;
        if (msg->err) {
                if (st->failed++ == 0)
                        snprintf(st->first_error, sizeof(st->first_error),
                                 "%s", rd_kafka_err2str(msg->err));
        } else {
                st->delivered++;
        }
        if (st->delivered + st->failed == st->expected)
                st->last_report = now_s();
}

static int topic_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                            const char *topic) {
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err;
        int n;
        double deadline = now_s() + METADATA_TIMEOUT_MS / 1000.0;

        /* Retried: a topic created a moment ago may not have a leader yet. */
        for (;;) {
                err = rd_kafka_metadata(rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
                if (err)
                        die("metadata for %s: %s", topic, rd_kafka_err2str(err));
                n = -1;
                if (md->topic_cnt == 1 && !md->topics[0].err) {
                        int i, led = 1;
                        for (i = 0; i < md->topics[0].partition_cnt; i++)
                                if (md->topics[0].partitions[i].leader < 0)
                                        led = 0;
                        if (led && md->topics[0].partition_cnt > 0)
                                n = md->topics[0].partition_cnt;
                }
                if (n < 0 && now_s() > deadline)
                        die("topic %s: %s", topic,
                            md->topic_cnt != 1 ? "not in metadata"
                            : md->topics[0].err
                                ? rd_kafka_err2str(md->topics[0].err)
                                : "no partitions, or one without a leader");
                rd_kafka_metadata_destroy(md);
                if (n > 0)
                        return n;
                struct timespec pause = {0, 100 * 1000 * 1000};
                nanosleep(&pause, NULL);
        }
}

/* Produces n messages of size bytes. partitions > 0 sends message i to
 * partition i % partitions; 0 leaves the choice to the partitioner. Returns
 * the seconds from the first produce call to the last delivery report. */
static double produce(const char *bootstrap, const char *topic, long long n,
                      size_t size, int partitions) {
        char err[512];
        char value[32];
        rd_kafka_conf_t *conf = new_conf();
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        struct produce_state st;
        char *payload;
        long long i;
        double started;

        memset(&st, 0, sizeof(st));
        st.expected = n;

        set(conf, "bootstrap.servers", bootstrap);
        set(conf, "acks", "all");
        set(conf, "linger.ms", "5");
        set(conf, "batch.size", "1048576");
        set(conf, "batch.num.messages", "1000000");
        snprintf(value, sizeof(value), "%lld", n < 10000000 ? n + 1 : 10000000LL);
        set(conf, "queue.buffering.max.messages", value);
        set(conf, "queue.buffering.max.kbytes", "2097152");
        set(conf, "enable.idempotence", "false");
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, &st);

        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk)
                die("producer: %s", err);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt)
                die("topic %s: %s", topic,
                    rd_kafka_err2str(rd_kafka_last_error()));
        /* Connected, topic known and led before the clock starts. */
        topic_partitions(rk, rkt, topic);

        /* One payload for every message; flag 0: librdkafka neither copies
         * nor frees it, and it outlives the producer. */
        payload = malloc(size);
        if (!payload)
                die("out of memory");
        for (i = 0; i < (long long)size; i++)
                payload[i] = (char)('a' + i % 26);

        started = now_s();
        for (i = 0; i < n; i++) {
                int32_t part = partitions > 0 ? (int32_t)(i % partitions)
                                              : RD_KAFKA_PARTITION_UA;
                while (rd_kafka_produce(rkt, part, 0, payload, size, NULL, 0,
                                        NULL) == -1) {
                        rd_kafka_resp_err_t e = rd_kafka_last_error();
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                die("produce: %s", rd_kafka_err2str(e));
                        rd_kafka_poll(rk, 1);
                }
                if ((i & 1023) == 0)
                        rd_kafka_poll(rk, 0);
        }
        if (rd_kafka_flush(rk, FLUSH_TIMEOUT_MS))
                die("flush: not every message delivered within %d s "
                    "(%lld of %lld)",
                    FLUSH_TIMEOUT_MS / 1000, st.delivered, n);
        /* flush() served the remaining delivery reports. */
        if (st.failed)
                die("%lld of %lld messages failed delivery; first error: %s",
                    st.failed, n, st.first_error);
        if (st.delivered != n)
                die("%lld delivery reports for %lld messages", st.delivered,
                    n);

        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        free(payload);
        return st.last_report - started;
}

/* --- consume ---------------------------------------------------------------- */

struct consume_result {
        long long messages;
        long long bytes;
        double seconds;     /* timed: within passes */
        double gap_seconds; /* between passes (mock only) */
        long long passes;
};

/* Reads n messages from offset 0 of every partition. window > 0 (mock):
 * each partition holds exactly window messages; after all of them are read
 * (one pass), every partition is sought back to 0, until n are read. */
static struct consume_result consume(const char *bootstrap, const char *topic,
                                     long long n, size_t size, int partitions,
                                     long long window) {
        char err[512];
        rd_kafka_conf_t *conf = new_conf();
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t rerr;
        struct consume_result r;
        long long in_pass = 0, pass_size;
        double pass_start = 0, pass_end = 0, last_seen;
        int p;

        memset(&r, 0, sizeof(r));
        set(conf, "bootstrap.servers", bootstrap);
        set(conf, "group.id", "rdkafka-bench"); /* required; nothing joins */
        set(conf, "enable.auto.commit", "false");
        set(conf, "enable.auto.offset.store", "false");
        set(conf, "enable.partition.eof", "false");
        set(conf, "auto.offset.reset", "earliest");
        /* Only matters at the end of a log: the mock holds an empty fetch
         * for this long, which would stall each pass. A broker holding the
         * whole topic never reaches its end before the Nth message. */
        set(conf, "fetch.wait.max.ms", "10");
        /* librdkafka 2.0 stops fetching a partition whose local queue holds
         * queued.min.messages (default 100000) or queued.max.messages.kbytes
         * (64 MiB) and looks again only after a fixed 1 s back-off
         * (librdkafka issue #2879; 2.1 added fetch.queue.backoff.ms). A
         * broker that serves faster than the application drains would be
         * charged for that second, so both go to their maxima. */
        set(conf, "queued.min.messages", "10000000");
        set(conf, "queued.max.messages.kbytes", "2097151");

        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!rk)
                die("consumer: %s", err);
        rd_kafka_poll_set_consumer(rk);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt)
                die("topic %s: %s", topic,
                    rd_kafka_err2str(rd_kafka_last_error()));
        int found = topic_partitions(rk, rkt, topic);
        if (partitions <= 0)
                partitions = found;
        else if (partitions != found)
                die("topic %s has %d partitions, not %d", topic, found,
                    partitions);
        rd_kafka_topic_destroy(rkt);

        if (window > 0) {
                for (p = 0; p < partitions; p++) {
                        int64_t lo, hi;
                        rerr = rd_kafka_query_watermark_offsets(
                            rk, topic, p, &lo, &hi, METADATA_TIMEOUT_MS);
                        if (rerr)
                                die("watermarks of %s [%d]: %s", topic, p,
                                    rd_kafka_err2str(rerr));
                        if (lo != 0 || hi != window)
                                die("mock partition %s [%d] holds offsets "
                                    "%" PRId64 "..%" PRId64
                                    ", not 0..%lld: the mock dropped "
                                    "message sets (its per-partition limit)",
                                    topic, p, lo, hi, window);
                }
        }

        parts = rd_kafka_topic_partition_list_new(partitions);
        for (p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rerr = rd_kafka_assign(rk, parts);
        if (rerr)
                die("assign: %s", rd_kafka_err2str(rerr));

        pass_size = window > 0 ? window * partitions : n;
        last_seen = now_s();
        while (r.messages < n) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 1000);
                double t;
                if (!msg) {
                        if (now_s() - last_seen > IDLE_TIMEOUT_S)
                                die("no message for %.0f s after %lld of %lld",
                                    IDLE_TIMEOUT_S, r.messages, n);
                        continue;
                }
                if (msg->err) {
                        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                rd_kafka_message_destroy(msg);
                                continue;
                        }
                        die("consume after %lld messages: %s", r.messages,
                            rd_kafka_message_errstr(msg));
                }
                if (msg->len != size)
                        die("message at %s [%d] offset %" PRId64
                            " has %zu bytes, expected %zu",
                            topic, (int)msg->partition, msg->offset, msg->len,
                            size);
                t = last_seen = now_s();
                if (in_pass == 0) {
                        if (r.passes > 0)
                                r.gap_seconds += t - pass_end;
                        pass_start = t;
                        r.passes++;
                }
                r.messages++;
                r.bytes += (long long)msg->len;
                in_pass++;
                rd_kafka_message_destroy(msg);
                if (in_pass == pass_size || r.messages == n) {
                        pass_end = t;
                        r.seconds += pass_end - pass_start;
                        in_pass = 0;
                        if (r.messages < n) {
                                rd_kafka_error_t *e;
                                for (p = 0; p < partitions; p++)
                                        parts->elems[p].offset = 0;
                                /* Blocking (-1): librdkafka 2.0 takes
                                 * this timeout in the wrong unit (fixed
                                 * in 2.1, PR #4230), so a finite one can
                                 * expire after a few milliseconds. */
                                e = rd_kafka_seek_partitions(rk, parts, -1);
                                if (e)
                                        die("seek: %s",
                                            rd_kafka_error_string(e));
                                for (p = 0; p < partitions; p++)
                                        if (parts->elems[p].err)
                                                die("seek %s [%d]: %s", topic,
                                                    p,
                                                    rd_kafka_err2str(
                                                        parts->elems[p].err));
                        }
                }
        }

        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return r;
}

/* --- main ------------------------------------------------------------------- */

static void print_json(const char *kind, long long messages, long long bytes,
                       double seconds, const struct consume_result *c) {
        if (seconds <= 0)
                seconds = 1e-9;
        printf("{\"kind\":\"%s\",\"messages\":%lld,\"bytes\":%lld,"
               "\"seconds\":%.6f,\"msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f",
               kind, messages, bytes, seconds, (double)messages / seconds,
               (double)bytes / 1e6 / seconds);
        if (c && c->passes > 1)
                printf(",\"passes\":%lld,\"gap_seconds\":%.6f", c->passes,
                       c->gap_seconds);
        printf(",\"librdkafka\":\"%s\"}\n", rd_kafka_version_str());
        fflush(stdout);
}

int main(int argc, char **argv) {
        const char *mode, *bootstrap = NULL, *topic = NULL;
        long long n = 0, size = 0;
        int partitions = 0, i;
        struct mock m;
        int is_mock;

        if (argc < 2)
                usage("missing mode");
        mode = argv[1];
        if (strcmp(mode, "produce") && strcmp(mode, "consume"))
                usage("mode must be produce or consume");
        for (i = 2; i < argc; i++) {
                const char *flag = argv[i];
                if (i + 1 >= argc)
                        usage("flag without a value");
                const char *v = argv[++i];
                if (!strcmp(flag, "--bootstrap"))
                        bootstrap = v;
                else if (!strcmp(flag, "--topic"))
                        topic = v;
                else if (!strcmp(flag, "--messages"))
                        n = parse_count(flag, v);
                else if (!strcmp(flag, "--size"))
                        size = parse_count(flag, v);
                else if (!strcmp(flag, "--partitions"))
                        partitions = (int)parse_count(flag, v);
                else
                        usage("unknown flag");
        }
        if (!bootstrap || !topic || !n || !size)
                usage("--bootstrap, --topic, --messages and --size are required");

        is_mock = !strcmp(bootstrap, "mock");
        if (is_mock) {
                if (partitions <= 0)
                        partitions = 1;
                mock_start(&m, topic, partitions);
                bootstrap = m.bootstraps;
        }

        if (!strcmp(mode, "produce")) {
                double s = produce(bootstrap, topic, n, (size_t)size, 0);
                print_json("produce", n, n * size, s, NULL);
        } else {
                struct consume_result r;
                long long window = 0;
                if (is_mock) {
                        long long per = MOCK_WINDOW_BYTES /
                                        (size + MOCK_RECORD_OVERHEAD);
                        long long fill;
                        if (per < 1)
                                die("--size %lld does not fit the mock's "
                                    "per-partition limit",
                                    size);
                        if (n <= per * partitions) {
                                /* Fits: fill exactly n, read once. */
                                if (n % partitions)
                                        die("--messages must be a multiple "
                                            "of --partitions against mock");
                                per = n / partitions;
                        }
                        window = per;
                        fill   = per * partitions;
                        produce(bootstrap, topic, fill, (size_t)size,
                                partitions);
                }
                r = consume(bootstrap, topic, n, (size_t)size, partitions,
                            window);
                print_json("consume", r.messages, r.bytes, r.seconds, &r);
        }

        if (is_mock)
                mock_stop(&m);
        return 0;
}
