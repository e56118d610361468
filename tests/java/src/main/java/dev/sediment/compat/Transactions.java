package dev.sediment.compat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Kafka's transactional producer (transactional.id set) and read_committed
 * consumer.
 *
 * <p>usage: Transactions BOOTSTRAP TOPIC TRANSACTIONAL_ID (scenario|hold)
 *
 * <p>scenario: on a new 2-partition topic, producer A runs
 * initTransactions, then transactions of {@link #PER_TXN} records spread
 * over both partitions: "committed-1" committed, "aborted-2" sent, flushed
 * and aborted, "committed-3" committed, then "fenced-4" sent and flushed but
 * left open. While it is open, the read_committed and read_uncommitted end
 * offsets are taken and a read_committed consumer reads everything it can.
 * Producer B with the same transactional.id then runs initTransactions,
 * which fences A and aborts "fenced-4": A's commitTransaction fails. B
 * commits "committed-5". Producer C with the same id fences B while B has
 * no transaction: B's next transaction fails at its first send and its
 * commitTransaction. C commits "committed-6". Finally read_committed and
 * read_uncommitted consumers read the topic from the beginning.
 *
 * <p>Prints what each step led to (the exception's simple class name, "ok"
 * when it succeeded), every record acknowledged as {txn, partition, offset,
 * value}, the end offsets while "fenced-4" was open, and every record each
 * consumer read as {partition, offset, value}.
 *
 * <p>hold: on a new 3-partition topic, initTransactions, begin, send
 * {@link #PER_TXN} records to partitions 0 and 2 and wait for their acks,
 * print {"event": "open", "acked": [{partition, offset}]}, then wait for a
 * line on stdin: "commit" commits and prints {"event": "committed"}, so the
 * test can look at the open transaction with the command-line tools.
 */
public final class Transactions {
    private Transactions() {}

    /** Records per transaction. */
    static final int PER_TXN = 10;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String transactionalId = args[2];
        String mode = args[3];
        switch (mode) {
            case "scenario" -> scenario(bootstrap, topic, transactionalId);
            case "hold" -> hold(bootstrap, topic, transactionalId);
            default -> throw Compat.fail("unknown mode " + mode);
        }
    }

    private static void scenario(String bootstrap, String topic, String transactionalId) {
        int partitions = 2;
        createTopic(bootstrap, topic, partitions);
        Map<String, Object> doc = new LinkedHashMap<>();
        Map<String, String> outcomes = new LinkedHashMap<>();
        List<Map<String, Object>> acked = new ArrayList<>();

        KafkaProducer<byte[], byte[]> a = Compat.producer(bootstrap, transactional(transactionalId));
        outcomes.put("a_init", attempt(() -> {
            a.initTransactions();
            return null;
        }));
        outcomes.put("a_commit_1", transaction(a, topic, partitions, "committed-1", true, acked));
        outcomes.put("a_abort_2", transaction(a, topic, partitions, "aborted-2", false, acked));
        outcomes.put("a_commit_3", transaction(a, topic, partitions, "committed-3", true, acked));

        // "fenced-4": written and acknowledged, but left open.
        a.beginTransaction();
        outcomes.put("a_send_4", sendAll(a, topic, partitions, "fenced-4", acked));
        Map<String, Object> whileOpen = new LinkedHashMap<>();
        whileOpen.put("read_committed_end", endOffsets(bootstrap, topic, partitions, "read_committed"));
        whileOpen.put("read_uncommitted_end", endOffsets(bootstrap, topic, partitions, "read_uncommitted"));
        whileOpen.put("read_committed", read(bootstrap, topic, partitions, "read_committed"));
        doc.put("while_open", whileOpen);

        // B takes over the transactional id: A is fenced, "fenced-4" aborted.
        KafkaProducer<byte[], byte[]> b = Compat.producer(bootstrap, transactional(transactionalId));
        outcomes.put("b_init", attempt(() -> {
            b.initTransactions();
            return null;
        }));
        outcomes.put("a_commit_4_after_b_init", attempt(() -> {
            a.commitTransaction();
            return null;
        }));
        a.close(Duration.ZERO);
        outcomes.put("b_commit_5", transaction(b, topic, partitions, "committed-5", true, acked));

        // C takes over while B has no transaction: B fails on its next send.
        KafkaProducer<byte[], byte[]> c = Compat.producer(bootstrap, transactional(transactionalId));
        outcomes.put("c_init", attempt(() -> {
            c.initTransactions();
            return null;
        }));
        outcomes.put("b_begin_after_c_init", attempt(() -> {
            b.beginTransaction();
            return null;
        }));
        outcomes.put("b_send_after_c_init", attempt(() -> b.send(new ProducerRecord<>(topic, 0, null,
                "zombie-b".getBytes(StandardCharsets.UTF_8))).get()));
        outcomes.put("b_commit_after_c_init", attempt(() -> {
            b.commitTransaction();
            return null;
        }));
        b.close(Duration.ZERO);
        outcomes.put("c_commit_6", transaction(c, topic, partitions, "committed-6", true, acked));
        c.close();

        doc.put("outcomes", outcomes);
        doc.put("acked", acked);
        doc.put("end_offsets", endOffsets(bootstrap, topic, partitions, "read_uncommitted"));
        doc.put("read_committed_end", endOffsets(bootstrap, topic, partitions, "read_committed"));
        doc.put("read_committed", read(bootstrap, topic, partitions, "read_committed"));
        doc.put("read_uncommitted", read(bootstrap, topic, partitions, "read_uncommitted"));
        Json.emit(doc);
    }

    private static void hold(String bootstrap, String topic, String transactionalId) throws Exception {
        createTopic(bootstrap, topic, 3);
        try (KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, transactional(transactionalId))) {
            producer.initTransactions();
            producer.beginTransaction();
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < PER_TXN; i++) {
                int partition = i % 2 == 0 ? 0 : 2;
                acks.add(producer.send(new ProducerRecord<>(topic, partition, null,
                        ("held-" + i).getBytes(StandardCharsets.UTF_8))));
            }
            producer.flush();
            List<Map<String, Object>> acked = new ArrayList<>();
            for (Future<RecordMetadata> ack : acks) {
                RecordMetadata meta = ack.get();
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("partition", meta.partition());
                out.put("offset", meta.offset());
                acked.add(out);
            }
            Map<String, Object> open = new LinkedHashMap<>();
            open.put("event", "open");
            open.put("acked", acked);
            Json.emit(open);

            BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line = stdin.readLine();
            if (!"commit".equals(line)) {
                throw Compat.fail("expected \"commit\" on stdin, got " + line);
            }
            producer.commitTransaction();
            Json.emit(Map.of("event", "committed"));
        }
    }

    private static void createTopic(String bootstrap, String topic, int partitions) {
        try (Admin admin = Compat.admin(bootstrap)) {
            Compat.get("createTopics " + topic,
                    admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all());
        }
    }

    private static Properties transactional(String transactionalId) {
        Properties props = new Properties();
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        return props;
    }

    /**
     * One transaction of {@link #PER_TXN} records labelled {@code txn},
     * committed or (after every record was acknowledged) aborted; the
     * outcome of the commit or abort.
     */
    private static String transaction(KafkaProducer<byte[], byte[]> producer, String topic, int partitions,
            String txn, boolean commit, List<Map<String, Object>> acked) {
        producer.beginTransaction();
        String sent = sendAll(producer, topic, partitions, txn, acked);
        if (!sent.equals("ok")) {
            return "send: " + sent;
        }
        return attempt(() -> {
            if (commit) {
                producer.commitTransaction();
            } else {
                producer.abortTransaction();
            }
            return null;
        });
    }

    /** Sends "TXN-I" to partition I % partitions for each I and waits for every ack. */
    private static String sendAll(KafkaProducer<byte[], byte[]> producer, String topic, int partitions,
            String txn, List<Map<String, Object>> acked) {
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        List<String> values = new ArrayList<>();
        for (int i = 0; i < PER_TXN; i++) {
            String value = txn + "-" + i;
            values.add(value);
            acks.add(producer.send(new ProducerRecord<>(topic, i % partitions, null,
                    value.getBytes(StandardCharsets.UTF_8))));
        }
        producer.flush();
        for (int i = 0; i < PER_TXN; i++) {
            int seq = i;
            String outcome = attempt(() -> {
                RecordMetadata meta = acks.get(seq).get();
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("txn", txn);
                out.put("partition", meta.partition());
                out.put("offset", meta.offset());
                out.put("value", values.get(seq));
                acked.add(out);
                return null;
            });
            if (!outcome.equals("ok")) {
                return outcome;
            }
        }
        return "ok";
    }

    /** "ok", or the simple class name of what {@code step} threw (the cause, for a failed future). */
    private static String attempt(Callable<?> step) {
        try {
            step.call();
            return "ok";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Compat.fail("interrupted");
        } catch (Exception e) {
            return e.getClass().getSimpleName();
        }
    }

    private static Properties isolation(String level) {
        Properties props = new Properties();
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
        return props;
    }

    private static List<TopicPartition> partitionsOf(String topic, int partitions) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    /** partition → end offset as a consumer with {@code level} sees it (the LSO for read_committed). */
    private static Map<String, Long> endOffsets(String bootstrap, String topic, int partitions, String level) {
        try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, isolation(level))) {
            Map<String, Long> out = new TreeMap<>();
            consumer.endOffsets(partitionsOf(topic, partitions))
                    .forEach((tp, offset) -> out.put(Integer.toString(tp.partition()), offset));
            return out;
        }
    }

    /**
     * Every record a consumer with {@code level} reads from the beginning
     * up to its end offsets, then one more fetch round: a read_committed
     * consumer must not be handed anything beyond the last stable offset.
     */
    private static List<Map<String, Object>> read(String bootstrap, String topic, int partitions, String level) {
        List<Map<String, Object>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, isolation(level))) {
            List<TopicPartition> tps = partitionsOf(topic, partitions);
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps);
            Compat.await(level + " consumer to reach " + ends, () -> {
                collect(consumer.poll(Duration.ofMillis(200)), out);
                return tps.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
            });
            collect(consumer.poll(Duration.ofMillis(500)), out);
        }
        return out;
    }

    private static void collect(Iterable<ConsumerRecord<byte[], byte[]>> records, List<Map<String, Object>> out) {
        for (ConsumerRecord<byte[], byte[]> r : records) {
            Map<String, Object> record = new LinkedHashMap<>();
            record.put("partition", r.partition());
            record.put("offset", r.offset());
            record.put("value", new String(r.value(), StandardCharsets.UTF_8));
            out.add(record);
        }
    }
}
