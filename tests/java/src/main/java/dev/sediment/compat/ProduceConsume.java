package dev.sediment.compat;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * The Java producer with its defaults (acks=all, enable.idempotence=true),
 * compressing with one codec, then an assign()-only consumer reading the topic
 * back from the beginning.
 *
 * <p>usage: ProduceConsume BOOTSTRAP TOPIC CODEC MESSAGES PARTITIONS
 *
 * <p>Prints {"producer_config": {...}, "produced": [{seq, partition, offset, key, value, headers}],
 * "consumed": [{partition, offset, key, value, headers}]}, bytes as hex.
 */
public final class ProduceConsume {
    private ProduceConsume() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String codec = args[2];
        int messages = Integer.parseInt(args[3]);
        int partitions = Integer.parseInt(args[4]);

        try (Admin admin = Compat.admin(bootstrap)) {
            Compat.get("createTopics " + topic,
                    admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all());
        }

        Properties producerProps = new Properties();
        producerProps.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        // Several batches per partition, so batching and compression really happen.
        producerProps.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        List<Map<String, Object>> produced = new ArrayList<>();
        Map<String, Object> producerConfig = new LinkedHashMap<>();
        try (KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, producerProps)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
            for (int seq = 0; seq < messages; seq++) {
                ProducerRecord<byte[], byte[]> record = message(topic, seq);
                sent.add(record);
                acks.add(producer.send(record));
            }
            producer.flush();
            for (int seq = 0; seq < messages; seq++) {
                RecordMetadata meta;
                try {
                    meta = acks.get(seq).get();
                } catch (ExecutionException e) {
                    throw Compat.fail("send #" + seq + ": " + e.getCause());
                }
                ProducerRecord<byte[], byte[]> r = sent.get(seq);
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("seq", seq);
                out.put("partition", meta.partition());
                out.put("offset", meta.offset());
                out.put("key", Compat.hex(r.key()));
                out.put("value", Compat.hex(r.value()));
                out.put("headers", Compat.headers(r.headers()));
                produced.add(out);
            }
        }
        // ProducerConfig resolves the defaults the producer above was built with.
        ProducerConfig resolved = new ProducerConfig(withSerializers(bootstrap, producerProps));
        producerConfig.put("acks", resolved.getString(ProducerConfig.ACKS_CONFIG));
        producerConfig.put("enable.idempotence", resolved.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG));
        producerConfig.put("compression.type", resolved.getString(ProducerConfig.COMPRESSION_TYPE_CONFIG));

        List<Map<String, Object>> consumed = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, new Properties())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Compat.await(messages + " records read back", () -> {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    consumed.add(Compat.record(r));
                }
                return consumed.size() >= messages;
            });
            // Nothing beyond what was produced: one more fetch round at the end.
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                consumed.add(Compat.record(r));
            }
        }

        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("producer_config", producerConfig);
        doc.put("produced", produced);
        doc.put("consumed", consumed);
        Json.emit(doc);
    }

    private static Properties withSerializers(String bootstrap, Properties props) {
        Properties all = new Properties();
        all.putAll(props);
        all.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        all.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
                "org.apache.kafka.common.serialization.ByteArraySerializer");
        all.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
                "org.apache.kafka.common.serialization.ByteArraySerializer");
        return all;
    }

    /**
     * The seq-th message: varied keys (some null), binary values (one null,
     * one empty, sizes from tens of bytes to a few KiB, compressible) and
     * headers (null values, a repeated name, binary bytes, an empty value).
     */
    static ProducerRecord<byte[], byte[]> message(String topic, int seq) throws NoSuchAlgorithmException {
        byte[] key = seq % 50 == 7 ? null : ("key-" + (seq % 13)).getBytes(StandardCharsets.UTF_8);
        byte[] value;
        if (seq % 97 == 5) {
            value = null;
        } else if (seq % 101 == 3) {
            value = new byte[0];
        } else {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(Integer.toString(seq).getBytes(StandardCharsets.UTF_8));
            byte[] prefix = String.format("v-%06d-", seq).getBytes(StandardCharsets.UTF_8);
            int repeats = 1 + seq % 96;
            int tail = seq % 256;
            value = new byte[prefix.length + digest.length * repeats + tail];
            System.arraycopy(prefix, 0, value, 0, prefix.length);
            for (int i = 0; i < repeats; i++) {
                System.arraycopy(digest, 0, value, prefix.length + i * digest.length, digest.length);
            }
            for (int i = 0; i < tail; i++) {
                value[prefix.length + repeats * digest.length + i] = (byte) i;
            }
        }
        RecordHeaders headers = new RecordHeaders();
        headers.add("seq", Integer.toString(seq).getBytes(StandardCharsets.UTF_8));
        headers.add("bin", new byte[] {(byte) (seq % 256), 0, (byte) 255, 10, 13});
        headers.add("null", null);
        headers.add("dup", "first".getBytes(StandardCharsets.UTF_8));
        headers.add("dup", "second".getBytes(StandardCharsets.UTF_8));
        if (seq % 3 == 0) {
            headers.add("empty", new byte[0]);
        }
        return new ProducerRecord<>(topic, null, key, value, headers);
    }
}
