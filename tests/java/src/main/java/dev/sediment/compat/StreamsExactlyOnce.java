package dev.sediment.compat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.ForeachAction;

/**
 * The windowed counts of {@link StreamsWindowedCount} (by key, and by group
 * through a repartition topic) with processing.guarantee=exactly_once_v2,
 * across a SIGKILL of the application while it has a transaction open.
 *
 * <p>usage: StreamsExactlyOnce BOOTSTRAP APP_ID STATE_DIR (first SEED | finish)
 *
 * <p>first: creates the topics, generates {@link StreamsWindowedCount#RECORDS}
 * input records from SEED, and starts the application on STATE_DIR. It
 * produces the first half and waits until Streams committed past it, then
 * produces the second half and has the stream thread block for good right
 * after it sent the by-key update of the (half + half/4)-th record it
 * processes. Once that update is on the broker inside the open transaction
 * (an output partition's high watermark above its last stable offset), it
 * prints one JSON line {"event": "open_transaction", "input": [{key,
 * partition, timestamp}], "groups": {key: group}, "committed_input":
 * {partition: offset}, "output_end": {partition: offset}, "output_lso":
 * {partition: offset}} (the by-key output's partitions) and waits to be
 * killed.
 *
 * <p>The input has no record later than the grace period, only on-time and
 * late-within-grace ones: a restarted Streams starts its window processors'
 * observed stream time afresh, so which too-late records it drops would
 * depend on where the kill left the committed offsets. Every record is
 * counted in its window, whatever happens, exactly once.
 *
 * <p>finish: starts the application on STATE_DIR (a fresh one, so its stores
 * come back only from the changelogs), waits until it committed past the
 * whole input and repartition topic and a read_committed reader of the
 * outputs reached their high watermarks (nothing open there any more),
 * closes it, waits until none of the broker's transactions is ongoing or
 * being completed, and prints {"run": {...}, "observed_by_key": {"KEY@START":
 * count}, "observed_by_group": {...}, "output_records": {topic:
 * {"read_committed": n, "read_uncommitted": n}}, "transactions":
 * [{transactional_id, state, producer_id}]}.
 */
public final class StreamsExactlyOnce {
    private StreamsExactlyOnce() {}

    static final int PARTITIONS = StreamsWindowedCount.PARTITIONS;
    static final int RECORDS = StreamsWindowedCount.RECORDS;

    /**
     * The application's transactions' timeout: the killed instance's open
     * transaction stays open (holding back the last stable offset) until the
     * broker aborts it after this. Twice Streams' default, so the
     * transaction cannot time out before this scenario has seen it open.
     */
    static final int TRANSACTION_TIMEOUT_MS = 20_000;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String appId = args[1];
        Path stateDir = Path.of(args[2]);
        String mode = args[3];
        switch (mode) {
            case "first" -> first(bootstrap, appId, stateDir, Long.parseLong(args[4]));
            case "finish" -> finish(bootstrap, appId, stateDir);
            default -> throw Compat.fail("unknown mode " + mode);
        }
    }

    static String input(String appId) {
        return appId + "-input";
    }

    static String outByKey(String appId) {
        return appId + "-out-by-key";
    }

    static String outByGroup(String appId) {
        return appId + "-out-by-group";
    }

    /** exactly_once_v2, committing every 100 ms, every update forwarded (no cache). */
    static Properties exactlyOnce() {
        Properties props = new Properties();
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), TRANSACTION_TIMEOUT_MS);
        return props;
    }

    /**
     * The application; the same topology in both runs, with a tap counting
     * by-key updates that blocks the stream thread for good at update
     * {@code blockAt} (never, while that is Long.MAX_VALUE).
     */
    static StreamsWindowedCount.Run run(String bootstrap, String appId, Path stateDir, Map<String, String> groupOf,
            AtomicLong forwarded, AtomicLong blockAt, CountDownLatch blocked) {
        ForeachAction<String, String> tap = (key, count) -> {
            if (forwarded.incrementAndGet() == blockAt.get()) {
                blocked.countDown();
                try {
                    // Until the test kills the JVM: nothing is committed any more.
                    new CountDownLatch(1).await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        return new StreamsWindowedCount.Run(bootstrap, appId,
                StreamsWindowedCount.topology(input(appId), outByKey(appId), outByGroup(appId), groupOf, tap),
                stateDir, exactlyOnce());
    }

    static Properties readCommitted() {
        Properties props = new Properties();
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        return props;
    }

    private static void first(String bootstrap, String appId, Path stateDir, long seed) throws Exception {
        Map<String, String> groupOf = StreamsWindowedCount.groups();
        long window = StreamsWindowedCount.WINDOW.toMillis();
        long base = (System.currentTimeMillis() - Duration.ofHours(1).toMillis()) / window * window;
        List<StreamsWindowedCount.Input> records = StreamsWindowedCount.generate(seed, base, false);
        int half = RECORDS / 2;
        String input = input(appId);
        String outByKey = outByKey(appId);
        try (Admin admin = Compat.admin(bootstrap);
                KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, new Properties());
                StreamsWindowedCount.Outputs outputs = new StreamsWindowedCount.Outputs(bootstrap,
                        List.of(outByKey, outByGroup(appId)), readCommitted())) {
            Compat.get("createTopics", admin.createTopics(List.of(
                    new NewTopic(input, PARTITIONS, (short) 1),
                    new NewTopic(outByKey, PARTITIONS, (short) 1),
                    new NewTopic(outByGroup(appId), PARTITIONS, (short) 1))).all());
            StreamsWindowedCount.Progress progress = new StreamsWindowedCount.Progress(admin, appId, input,
                    appId + "-" + StreamsWindowedCount.REPARTITION + "-repartition", outputs);

            AtomicLong forwarded = new AtomicLong();
            AtomicLong blockAt = new AtomicLong(Long.MAX_VALUE);
            CountDownLatch blocked = new CountDownLatch(1);
            StreamsWindowedCount.Run run = run(bootstrap, appId, stateDir, groupOf, forwarded, blockAt, blocked);
            run.startAndAwaitRunning();
            StreamsWindowedCount.produce(producer, input, records.subList(0, half));
            progress.awaitCaughtUp("Streams to commit past the first half of the input");

            blockAt.set(forwarded.get() + half / 4);
            StreamsWindowedCount.produce(producer, input, records.subList(half, RECORDS));
            List<TopicPartition> outputPartitions = partitions(outByKey);
            Map<String, Long> end = new TreeMap<>();
            Map<String, Long> lso = new TreeMap<>();
            run.await("the stream thread to block with its by-key update in an open transaction", () -> {
                if (blocked.getCount() > 0) {
                    return false;
                }
                end.putAll(offsets(admin, outputPartitions, IsolationLevel.READ_UNCOMMITTED));
                lso.putAll(offsets(admin, outputPartitions, IsolationLevel.READ_COMMITTED));
                return end.keySet().stream().anyMatch(p -> end.get(p) > lso.get(p));
            });

            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("event", "open_transaction");
            List<Map<String, Object>> inputs = new ArrayList<>();
            for (StreamsWindowedCount.Input r : records) {
                Map<String, Object> record = new LinkedHashMap<>();
                record.put("key", r.key());
                record.put("partition", r.partition());
                record.put("timestamp", r.timestamp());
                inputs.add(record);
            }
            doc.put("input", inputs);
            doc.put("groups", groupOf);
            Map<TopicPartition, OffsetAndMetadata> committed = Compat.get("listConsumerGroupOffsets",
                    admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata());
            Map<String, Long> committedInput = new TreeMap<>();
            committed.forEach((tp, offset) -> {
                if (tp.topic().equals(input) && offset != null) {
                    committedInput.put(Integer.toString(tp.partition()), offset.offset());
                }
            });
            doc.put("committed_input", committedInput);
            doc.put("output_end", end);
            doc.put("output_lso", lso);
            Json.emit(doc);

            // The test SIGKILLs this JVM now; stdin ends only if the test went away.
            while (System.in.read() >= 0) {
                // nothing to read: the test never writes
            }
            throw Compat.fail("stdin closed before the test killed the application");
        }
    }

    private static void finish(String bootstrap, String appId, Path stateDir) {
        String input = input(appId);
        List<String> outputTopics = List.of(outByKey(appId), outByGroup(appId));
        Map<String, Object> doc = new LinkedHashMap<>();
        try (Admin admin = Compat.admin(bootstrap);
                StreamsWindowedCount.Outputs outputs = new StreamsWindowedCount.Outputs(bootstrap, outputTopics,
                        readCommitted())) {
            StreamsWindowedCount.Progress progress = new StreamsWindowedCount.Progress(admin, appId, input,
                    appId + "-" + StreamsWindowedCount.REPARTITION + "-repartition", outputs);
            StreamsWindowedCount.Run run = run(bootstrap, appId, stateDir, StreamsWindowedCount.groups(),
                    new AtomicLong(), new AtomicLong(Long.MAX_VALUE), new CountDownLatch(1));
            run.startAndAwaitRunning();
            progress.awaitCaughtUp("the restarted Streams to commit past the whole input and its outputs to be stable");
            Map<String, Object> runDoc = run.closeLeavingGroup();
            runDoc.put("restored", run.restored);
            doc.put("run", runDoc);
            doc.put("observed_by_key", outputs.latest(outByKey(appId)));
            doc.put("observed_by_group", outputs.latest(outByGroup(appId)));

            Map<String, Object> outputRecords = new TreeMap<>();
            for (String topic : outputTopics) {
                Map<String, Object> counts = new LinkedHashMap<>();
                counts.put("read_committed", count(bootstrap, topic, "read_committed"));
                counts.put("read_uncommitted", count(bootstrap, topic, "read_uncommitted"));
                outputRecords.put(topic, counts);
            }
            doc.put("output_records", outputRecords);

            List<TransactionListing> listed = new ArrayList<>();
            run.await("every transaction to be complete", () -> {
                listed.clear();
                listed.addAll(Compat.get("listTransactions", admin.listTransactions().all()));
                return listed.stream().noneMatch(t -> switch (t.state().toString()) {
                    case "Ongoing", "PrepareCommit", "PrepareAbort" -> true;
                    default -> false;
                });
            });
            List<Map<String, Object>> transactions = new ArrayList<>();
            for (TransactionListing t : listed) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("transactional_id", t.transactionalId());
                out.put("state", t.state().toString());
                out.put("producer_id", t.producerId());
                transactions.add(out);
            }
            doc.put("transactions", transactions);
        }
        Json.emit(doc);
    }

    static List<TopicPartition> partitions(String topic) {
        List<TopicPartition> out = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            out.add(new TopicPartition(topic, p));
        }
        return out;
    }

    /** partition → end offset with {@code isolation} (the last stable offset for READ_COMMITTED). */
    static Map<String, Long> offsets(Admin admin, List<TopicPartition> partitions, IsolationLevel isolation) {
        Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
        partitions.forEach(tp -> specs.put(tp, OffsetSpec.latest()));
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> infos = Compat.get("listOffsets " + isolation,
                admin.listOffsets(specs, new ListOffsetsOptions(isolation)).all());
        Map<String, Long> out = new TreeMap<>();
        infos.forEach((tp, info) -> out.put(Integer.toString(tp.partition()), info.offset()));
        return out;
    }

    /** Records a consumer with {@code level} reads from the beginning up to the end it sees. */
    static long count(String bootstrap, String topic, String level) {
        Properties props = new Properties();
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
        try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, props)) {
            List<TopicPartition> tps = partitions(topic);
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps);
            long[] read = {0};
            Compat.await("a " + level + " reader of " + topic + " to reach " + ends, () -> {
                read[0] += consumer.poll(Duration.ofMillis(200)).count();
                return tps.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
            });
            return read[0];
        }
    }
}
