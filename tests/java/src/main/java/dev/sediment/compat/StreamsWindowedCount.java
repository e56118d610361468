package dev.sediment.compat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.ForeachAction;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.WindowStore;

/**
 * A Kafka Streams application (at_least_once) counting records per key in
 * tumbling 10 s event-time windows with 5 s of grace, twice in one topology:
 * by the record key ({@code groupByKey}) and by a group derived from it
 * ({@code groupBy}, so Streams creates and uses a repartition topic). Both
 * counts are windowed stores logged to changelog topics Streams creates
 * itself (cleanup.policy=compact,delete), and each count's updates go to an
 * output topic.
 *
 * <p>usage: StreamsWindowedCount BOOTSTRAP APP_ID SEED
 *
 * <p>The input is generated from SEED: keyed records with explicit event
 * timestamps, mostly in order per partition, some late but within grace
 * (counted) and some later than grace (dropped by Streams). Run 1 processes
 * the first half, fed in chunks, each chunk awaited until Streams committed
 * past it, then closes and leaves the group. Run 2 starts with a fresh,
 * empty state.dir, so the window stores can only come back by restoring the
 * changelogs from the broker, and processes the second half. The expected
 * counts are computed here from the generated input, independently of
 * Streams.
 *
 * <p>"Exact counts" is well defined because the output's latest value per
 * (key, window), read once Streams has committed past every input and
 * repartition record, is the store's final count; and because each group
 * maps only to keys of the same partition number (the record key and its
 * group hash to the same partition), the repartitioned stream of each
 * partition is the input partition in the same order, so which records are
 * later than grace does not depend on how Streams interleaves partitions.
 * The first record of each half in every partition is on time, so the
 * counts do not depend on whether Streams restores stream time either.
 *
 * <p>Prints observed vs expected counts, the topics Streams created with
 * the configs set on them, the records restored per store in each run, and
 * what a reader of each changelog saw after run 1 and, once the broker's
 * cleaner has compacted every changelog (awaited), at the end: fewer
 * records than offsets means superseded values were removed.
 */
public final class StreamsWindowedCount {
    private StreamsWindowedCount() {}

    static final int PARTITIONS = 3;
    static final int KEYS = 24;
    static final int GROUPS_PER_PARTITION = 2;
    static final int RECORDS = 3000;
    static final int CHUNKS_PER_HALF = 6;
    static final Duration WINDOW = Duration.ofSeconds(10);
    static final Duration GRACE = Duration.ofSeconds(5);
    static final String BY_KEY_STORE = "count-by-key";
    static final String BY_GROUP_STORE = "count-by-group";
    static final String REPARTITION = "by-group";

    /** One generated input record. */
    record Input(String key, int partition, long timestamp, String lateness) {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String appId = args[1];
        long seed = Long.parseLong(args[2]);
        String input = appId + "-input";
        String outByKey = appId + "-out-by-key";
        String outByGroup = appId + "-out-by-group";

        Map<String, String> groupOf = groups();
        // Event time: an hour ago, window-aligned, so nothing is near a
        // retention limit and no timestamp is in the future.
        long base = (System.currentTimeMillis() - Duration.ofHours(1).toMillis())
                / WINDOW.toMillis() * WINDOW.toMillis();
        List<Input> records = generate(seed, base, true);
        int half = RECORDS / 2;

        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("app_id", appId);
        doc.put("seed", seed);
        doc.put("records", records.size());
        doc.put("lateness", records.stream()
                .collect(Collectors.groupingBy(Input::lateness, TreeMap::new, Collectors.counting())));

        try (Admin admin = Compat.admin(bootstrap);
                KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, new Properties());
                Outputs outputs = new Outputs(bootstrap, List.of(outByKey, outByGroup), new Properties())) {
            Compat.get("createTopics", admin.createTopics(List.of(
                    new NewTopic(input, PARTITIONS, (short) 1),
                    new NewTopic(outByKey, PARTITIONS, (short) 1),
                    new NewTopic(outByGroup, PARTITIONS, (short) 1))).all());
            String repartition = appId + "-" + REPARTITION + "-repartition";
            Progress progress = new Progress(admin, appId, input, repartition, outputs);

            // Run 1: the first half, in chunks, each awaited until committed.
            Path stateDir1 = Files.createTempDirectory("sediment-streams-1-");
            Run run1 = new Run(bootstrap, appId, topology(input, outByKey, outByGroup, groupOf, null), stateDir1,
                    new Properties());
            run1.startAndAwaitRunning();
            int chunk = half / CHUNKS_PER_HALF;
            for (int from = 0; from < half; from += chunk) {
                produce(producer, input, records.subList(from, Math.min(half, from + chunk)));
                progress.awaitCaughtUp("run 1 to commit past input record " + Math.min(half, from + chunk));
            }
            Map<String, Object> run1Doc = run1.closeLeavingGroup();
            run1Doc.put("restored", run1.restored);
            doc.put("run1", run1Doc);
            doc.put("changelogs_after_run1", changelogs(bootstrap, admin, appId));

            // Run 2: a fresh state.dir, so the stores must be restored from the changelogs.
            Path stateDir2 = Files.createTempDirectory("sediment-streams-2-");
            Run run2 = new Run(bootstrap, appId, topology(input, outByKey, outByGroup, groupOf, null), stateDir2,
                    new Properties());
            run2.startAndAwaitRunning();
            for (int from = half; from < RECORDS; from += chunk) {
                produce(producer, input, records.subList(from, Math.min(RECORDS, from + chunk)));
                progress.awaitCaughtUp("run 2 to commit past input record " + Math.min(RECORDS, from + chunk));
            }
            Map<String, Object> run2Doc = run2.closeLeavingGroup();
            run2Doc.put("restored", run2.restored);
            run2Doc.put("restore_ends", run2.restoreEnds);
            doc.put("run2", run2Doc);

            doc.put("expected_by_key", expected(records, r -> r.key()));
            doc.put("expected_by_group", expected(records, r -> groupOf.get(r.key())));
            doc.put("observed_by_key", outputs.latest(outByKey));
            doc.put("observed_by_group", outputs.latest(outByGroup));
            doc.put("topics", topics(admin, appId));
            // Every changelog rolled segments (segment.ms) over the two runs,
            // so the cleaner has superseded values to remove: wait for it.
            AtomicReference<Map<String, Object>> atEnd = new AtomicReference<>();
            Compat.await("the broker's cleaner to compact every changelog", () -> {
                atEnd.set(changelogs(bootstrap, admin, appId));
                return !atEnd.get().isEmpty() && atEnd.get().values().stream().allMatch(log -> {
                    Map<?, ?> m = (Map<?, ?>) log;
                    return (Long) m.get("records") < (Long) m.get("offsets");
                });
            });
            doc.put("changelogs_at_end", atEnd.get());
            deleteTree(stateDir1);
            deleteTree(stateDir2);
        }
        Json.emit(doc);
    }

    /** The partition Kafka's default partitioner (and Streams') picks for a String key. */
    static int partitionOf(String key) {
        return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % PARTITIONS;
    }

    /**
     * key → group, each group hashing to the same partition as its keys, so
     * the groupBy path keeps every record on its partition number.
     */
    static Map<String, String> groups() {
        Map<Integer, List<String>> byPartition = new HashMap<>();
        for (int i = 0; byPartition.values().stream().mapToInt(List::size).sum()
                < PARTITIONS * GROUPS_PER_PARTITION; i++) {
            String group = "group-" + i;
            List<String> groups = byPartition.computeIfAbsent(partitionOf(group), p -> new ArrayList<>());
            if (groups.size() < GROUPS_PER_PARTITION) {
                groups.add(group);
            }
        }
        Map<String, String> groupOf = new TreeMap<>();
        for (int k = 0; k < KEYS; k++) {
            String key = String.format("key-%02d", k);
            groupOf.put(key, byPartition.get(partitionOf(key)).get(k % GROUPS_PER_PARTITION));
        }
        return groupOf;
    }

    /**
     * RECORDS records from {@code seed}: each partition has its own event
     * clock that advances 50-400 ms per on-time record; a tenth of records
     * are 1-4 s behind the clock (late, within the 5 s grace) and, with
     * {@code laterThanGrace}, one in twenty 16-30 s behind (later than window
     * plus grace: dropped; without, those are on time too). The first record
     * of each half in every partition is on time.
     */
    static List<Input> generate(long seed, long base, boolean laterThanGrace) {
        Random random = new Random(seed);
        long[] clock = new long[PARTITIONS];
        java.util.Arrays.fill(clock, base);
        boolean[] seen = new boolean[PARTITIONS * 2];
        List<Input> out = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
            String key = String.format("key-%02d", random.nextInt(KEYS));
            int p = partitionOf(key);
            int roll = random.nextInt(100);
            int halfIndex = i < RECORDS / 2 ? 0 : 1;
            boolean firstOfHalf = !seen[p * 2 + halfIndex];
            seen[p * 2 + halfIndex] = true;
            if (firstOfHalf || roll >= 15 || (roll < 5 && !laterThanGrace)) {
                clock[p] += 50 + random.nextInt(351);
                out.add(new Input(key, p, clock[p], "on_time"));
            } else if (roll >= 5) {
                out.add(new Input(key, p, clock[p] - 1000 - random.nextInt(3001), "late_within_grace"));
            } else {
                out.add(new Input(key, p, clock[p] - 16000 - random.nextInt(14001), "later_than_grace"));
            }
        }
        return out;
    }

    /**
     * What the windowed count must hold at the end, computed the way Kafka
     * Streams defines it: a record counts in its window unless, when it is
     * processed, stream time (the highest timestamp its partition has seen,
     * this record included) minus grace has reached the window's end.
     */
    static Map<String, Long> expected(List<Input> records, java.util.function.Function<Input, String> groupBy) {
        long[] streamTime = new long[PARTITIONS];
        java.util.Arrays.fill(streamTime, -1);
        Map<String, Long> counts = new TreeMap<>();
        for (Input r : records) {
            streamTime[r.partition()] = Math.max(streamTime[r.partition()], r.timestamp());
            long start = r.timestamp() - r.timestamp() % WINDOW.toMillis();
            long end = start + WINDOW.toMillis();
            if (end > streamTime[r.partition()] - GRACE.toMillis()) {
                counts.merge(groupBy.apply(r) + "@" + start, 1L, Long::sum);
            }
        }
        return counts;
    }

    static void produce(KafkaProducer<byte[], byte[]> producer, String topic, List<Input> records) {
        List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
        for (Input r : records) {
            acks.add(producer.send(new ProducerRecord<>(topic, r.partition(), r.timestamp(),
                    r.key().getBytes(StandardCharsets.UTF_8), r.lateness().getBytes(StandardCharsets.UTF_8))));
        }
        for (java.util.concurrent.Future<?> ack : acks) {
            try {
                ack.get();
            } catch (Exception e) {
                throw Compat.fail("produce input: " + e);
            }
        }
    }

    /**
     * The application: both windowed counts, each store logged to a
     * changelog, each count's updates (key "KEY@WINDOW_START", value the
     * count) written to its output topic. {@code tap}, when not null, is
     * also handed every by-key update, after it was sent to the output.
     */
    static Topology topology(String input, String outByKey, String outByGroup, Map<String, String> groupOf,
            ForeachAction<String, String> tap) {
        // Changelogs roll a segment every second and are cleanable at
        // any dirty ratio, so the broker's cleaner compacts them while
        // the test runs; Streams still sets cleanup.policy and retention.
        Map<String, String> changelog = Map.of(
                "segment.ms", "1000",
                "min.cleanable.dirty.ratio", "0.01");
        TimeWindows windows = TimeWindows.ofSizeAndGrace(WINDOW, GRACE);
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> source = builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        KStream<String, String> byKey = source.groupByKey()
                .windowedBy(windows)
                .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(BY_KEY_STORE)
                        .withLoggingEnabled(changelog))
                .toStream()
                .map((w, count) -> KeyValue.pair(w.key() + "@" + w.window().start(), String.valueOf(count)));
        byKey.to(outByKey, Produced.with(Serdes.String(), Serdes.String()));
        if (tap != null) {
            byKey.foreach(tap);
        }
        source.groupBy((key, value) -> groupOf.get(key),
                        Grouped.with(REPARTITION, Serdes.String(), Serdes.String()))
                .windowedBy(windows)
                .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(BY_GROUP_STORE)
                        .withLoggingEnabled(changelog))
                .toStream()
                .map((w, count) -> KeyValue.pair(w.key() + "@" + w.window().start(), String.valueOf(count)))
                .to(outByGroup, Produced.with(Serdes.String(), Serdes.String()));
        return builder.build();
    }

    /** One KafkaStreams instance of the application, on its own state.dir. */
    static final class Run {
        final KafkaStreams streams;
        final AtomicReference<String> uncaught = new AtomicReference<>();
        final List<String> states = new ArrayList<>();
        /** store → records restored (onBatchRestored). */
        final Map<String, Long> restored = new ConcurrentHashMap<>();
        /** store changelog partition → total restored (onRestoreEnd). */
        final Map<String, Long> restoreEnds = new ConcurrentHashMap<>();

        /**
         * One instance running {@code topology} on {@code stateDir},
         * at_least_once unless {@code overrides} says otherwise.
         */
        Run(String bootstrap, String appId, Topology topology, Path stateDir, Properties overrides) {
            Properties props = new Properties();
            props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
            props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
            props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
            props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
            // Commit often, so each chunk is committed soon after it is processed.
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
            props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
            props.putAll(overrides);

            streams = new KafkaStreams(topology, props);
            streams.setUncaughtExceptionHandler(e -> {
                e.printStackTrace();
                uncaught.compareAndSet(null, e.toString());
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                        .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.setStateListener((now, before) -> {
                synchronized (states) {
                    states.add(now.name());
                    states.notifyAll();
                }
            });
            streams.setGlobalStateRestoreListener(new StateRestoreListener() {
                @Override
                public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

                @Override
                public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
                    restored.merge(store, n, Long::sum);
                }

                @Override
                public void onRestoreEnd(TopicPartition tp, String store, long total) {
                    restoreEnds.merge(tp.toString(), total, Long::sum);
                }
            });
        }

        void startAndAwaitRunning() {
            streams.start();
            await("Streams to reach RUNNING", () -> streams.state() == KafkaStreams.State.RUNNING);
        }

        /** Waits for {@code condition}, failing early if Streams died. */
        void await(String what, java.util.function.BooleanSupplier condition) {
            Compat.await(what, () -> {
                if (uncaught.get() != null || streams.state() == KafkaStreams.State.ERROR
                        || streams.state() == KafkaStreams.State.PENDING_ERROR) {
                    throw Compat.fail("Streams failed while waiting for " + what + ": " + uncaught.get()
                            + " (state " + streams.state() + ")");
                }
                // A bounded wait on Streams' state, so this is no busy loop.
                synchronized (states) {
                    try {
                        states.wait(100);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return condition.getAsBoolean();
            });
        }

        /** Closes (committing) and leaves the group, so the next run needs no session timeout. */
        Map<String, Object> closeLeavingGroup() {
            if (uncaught.get() != null) {
                throw Compat.fail("Streams failed: " + uncaught.get());
            }
            boolean closed = streams.close(CloseOptions
                    .groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Compat.DEADLINE));
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("closed_in_time", closed);
            out.put("state_after_close", streams.state().name());
            synchronized (states) {
                out.put("states", new ArrayList<>(states));
            }
            return out;
        }
    }

    /**
     * Reads the output topics as they grow, keeping the latest value per
     * (key, window), with the consumer settings {@code extra} (e.g.
     * isolation.level).
     */
    static final class Outputs implements AutoCloseable {
        final KafkaConsumer<byte[], byte[]> consumer;
        final Map<String, Map<String, Long>> latest = new HashMap<>();

        Outputs(String bootstrap, List<String> topics, Properties extra) {
            consumer = Compat.consumer(bootstrap, extra);
            List<TopicPartition> partitions = new ArrayList<>();
            for (String topic : topics) {
                latest.put(topic, new TreeMap<>());
                for (int p = 0; p < PARTITIONS; p++) {
                    partitions.add(new TopicPartition(topic, p));
                }
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
        }

        /** Polls once (blocking up to 200 ms). */
        void poll() {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                latest.get(r.topic()).put(new String(r.key(), StandardCharsets.UTF_8),
                        Long.parseLong(new String(r.value(), StandardCharsets.UTF_8)));
            }
        }

        boolean readUpTo(Map<TopicPartition, Long> ends) {
            return ends.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue());
        }

        Map<String, Long> latest(String topic) {
            return latest.get(topic);
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    /** Whether Streams has committed past everything in the input and repartition topics. */
    static final class Progress {
        final Admin admin;
        final String appId;
        final String input;
        final String repartition;
        final Outputs outputs;

        Progress(Admin admin, String appId, String input, String repartition, Outputs outputs) {
            this.admin = admin;
            this.appId = appId;
            this.input = input;
            this.repartition = repartition;
            this.outputs = outputs;
        }

        /**
         * Waits until the group's committed offsets reach the end of the
         * input, then of the repartition topic (whose end is final once the
         * input is committed: Streams flushes what it produced before it
         * commits), then until the output reader has read up to the
         * outputs' ends. The reader's poll is the bounded wait.
         */
        void awaitCaughtUp(String what) {
            Compat.await(what, () -> {
                outputs.poll();
                Map<TopicPartition, OffsetAndMetadata> committed = Compat.get("listConsumerGroupOffsets",
                        admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata());
                return caughtUp(committed, input) && caughtUp(committed, repartition)
                        && outputs.readUpTo(ends(outputs.latest.keySet()));
            });
        }

        boolean caughtUp(Map<TopicPartition, OffsetAndMetadata> committed, String topic) {
            for (Map.Entry<TopicPartition, Long> end : ends(List.of(topic)).entrySet()) {
                OffsetAndMetadata offset = committed.get(end.getKey());
                long at = offset == null ? 0 : offset.offset();
                if (at < end.getValue()) {
                    return false;
                }
            }
            return true;
        }

        Map<TopicPartition, Long> ends(Collection<String> topics) {
            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            for (String topic : topics) {
                for (int p = 0; p < PARTITIONS; p++) {
                    specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
                }
            }
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> infos =
                    Compat.get("listOffsets", admin.listOffsets(specs).all());
            Map<TopicPartition, Long> out = new HashMap<>();
            infos.forEach((tp, info) -> out.put(tp, info.offset()));
            return out;
        }
    }

    /** The application's internal topics: partitions and the configs set on them (not defaults). */
    static Map<String, Object> topics(Admin admin, String appId) {
        Set<String> names = new TreeSet<>(Compat.get("listTopics", admin.listTopics().names()));
        names.removeIf(n -> !n.startsWith(appId + "-") || n.startsWith(appId + "-input")
                || n.startsWith(appId + "-out-"));
        Map<String, TopicDescription> descriptions = Compat.get("describeTopics",
                admin.describeTopics(names).allTopicNames());
        List<ConfigResource> resources = names.stream()
                .map(n -> new ConfigResource(ConfigResource.Type.TOPIC, n)).toList();
        Map<ConfigResource, Config> configs = Compat.get("describeConfigs",
                admin.describeConfigs(resources).all());
        Map<String, Object> out = new TreeMap<>();
        for (String name : names) {
            Map<String, Object> topic = new LinkedHashMap<>();
            topic.put("partitions", descriptions.get(name).partitions().size());
            Map<String, String> set = new TreeMap<>();
            for (ConfigEntry e : configs.get(new ConfigResource(ConfigResource.Type.TOPIC, name)).entries()) {
                if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                    set.put(e.name(), e.value());
                }
            }
            topic.put("configs", set);
            out.put(name, topic);
        }
        return out;
    }

    /**
     * Per changelog topic: the records a reader sees from the beginning and
     * the offsets they span; records &lt; offsets once the cleaner has
     * removed superseded values. Each poll is a bounded wait.
     */
    static Map<String, Object> changelogs(String bootstrap, Admin admin, String appId) {
        Set<String> names = new TreeSet<>(Compat.get("listTopics", admin.listTopics().names()));
        names.removeIf(n -> !(n.startsWith(appId + "-") && n.endsWith("-changelog")));
        Map<String, Object> out = new TreeMap<>();
        Properties props = new Properties();
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
        try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, props)) {
            for (String name : names) {
                List<TopicPartition> partitions = new ArrayList<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    partitions.add(new TopicPartition(name, p));
                }
                Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
                Map<TopicPartition, Long> starts = consumer.beginningOffsets(partitions);
                consumer.assign(partitions);
                consumer.seekToBeginning(partitions);
                long[] read = {0};
                Compat.await("reading changelog " + name, () -> {
                    read[0] += consumer.poll(Duration.ofMillis(200)).count();
                    return partitions.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
                });
                long spanned = partitions.stream().mapToLong(tp -> ends.get(tp) - starts.get(tp)).sum();
                Map<String, Object> log = new LinkedHashMap<>();
                log.put("records", read[0]);
                log.put("offsets", spanned);
                out.put(name, log);
            }
        }
        return out;
    }

    static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
