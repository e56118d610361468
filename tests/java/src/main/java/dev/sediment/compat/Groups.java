package dev.sediment.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * Classic consumer groups (group.protocol=classic) with Kafka's range or
 * cooperative-sticky assignor, in two phases around a broker restart.
 *
 * <p>usage: Groups BOOTSTRAP TOPIC GROUP (range|cooperative-sticky) (share|resume)
 *
 * <p>share: creates a 4-partition topic; consumers c1 and c2 join, and once
 * both hold partitions 100 records per partition are produced and consumed,
 * each committing what it read; c2 leaves, 50 more per partition are
 * produced and c1, which takes over every partition, reads them and commits.
 *
 * <p>resume: 25 more per partition are produced; a new consumer c3 in the
 * group reads from the committed offsets and commits.
 *
 * <p>Prints the assignments, every record read as {by, stage, partition,
 * offset, value}, the group as describeConsumerGroups saw it while both were
 * members, and the committed offsets (listConsumerGroupOffsets) before and
 * after.
 */
public final class Groups {
    private Groups() {}

    static final int PARTITIONS = 4;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        String assignor = args[3];
        String phase = args[4];
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("phase", phase);
        try (Admin admin = Compat.admin(bootstrap);
                KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, new Properties())) {
            List<Map<String, Object>> consumed = new ArrayList<>();
            doc.put("consumed", consumed);
            if (phase.equals("share")) {
                Compat.get("createTopics",
                        admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all());
                share(bootstrap, topic, group, assignor, admin, producer, consumed, doc);
            } else if (phase.equals("resume")) {
                doc.put("committed_before", committed(admin, group));
                produce(producer, topic, "resume", 25);
                Member c3 = new Member("c3", bootstrap, topic, group, assignor);
                Compat.await("c3 to read the 100 new records", () -> {
                    c3.pollInto(consumed, "resume");
                    return c3.consumer.assignment().size() == PARTITIONS && consumed.size() >= 100;
                });
                c3.consumer.commitSync();
                c3.consumer.close();
                doc.put("c3_events", c3.events);
            } else {
                throw Compat.fail("unknown phase " + phase);
            }
            doc.put("committed_after", committed(admin, group));
        }
        Json.emit(doc);
    }

    private static void share(String bootstrap, String topic, String group, String assignor, Admin admin,
            KafkaProducer<byte[], byte[]> producer, List<Map<String, Object>> consumed,
            Map<String, Object> doc) {
        Member c1 = new Member("c1", bootstrap, topic, group, assignor);
        Member c2 = new Member("c2", bootstrap, topic, group, assignor);
        // Both poll in turn (each poll is bounded), so each can answer the
        // rebalances the other's arrival causes.
        Compat.await("c1 and c2 to share the 4 partitions", () -> {
            c1.pollInto(consumed, "shared");
            c2.pollInto(consumed, "shared");
            Set<TopicPartition> a1 = c1.consumer.assignment();
            Set<TopicPartition> a2 = c2.consumer.assignment();
            Set<TopicPartition> union = new HashSet<>(a1);
            union.addAll(a2);
            return !a1.isEmpty() && !a2.isEmpty() && union.size() == PARTITIONS
                    && a1.size() + a2.size() == PARTITIONS;
        });
        doc.put("shared_assignment", Map.of("c1", partitions(c1.consumer.assignment()),
                "c2", partitions(c2.consumer.assignment())));

        ConsumerGroupDescription described = Compat.get("describeConsumerGroups",
                admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        Map<String, Object> description = new LinkedHashMap<>();
        description.put("state", described.groupState().toString());
        description.put("type", described.type().toString());
        description.put("assignor", described.partitionAssignor());
        description.put("members", described.members().size());
        Map<String, Object> memberAssignments = new TreeMap<>();
        described.members().forEach(m -> memberAssignments.put(m.clientId(),
                partitions(m.assignment().topicPartitions())));
        description.put("member_assignments", memberAssignments);
        doc.put("described", description);

        produce(producer, topic, "shared", 100);
        Compat.await("c1 and c2 to read the 400 records", () -> {
            c1.pollInto(consumed, "shared");
            c2.pollInto(consumed, "shared");
            return consumed.size() >= 400;
        });
        c1.consumer.commitSync();
        c2.consumer.commitSync();
        doc.put("committed_shared", committed(admin, group));

        // c2 leaves (LeaveGroup on close); c1 takes over its partitions and
        // starts them from what c2 committed.
        c2.consumer.close();
        produce(producer, topic, "takeover", 50);
        Compat.await("c1 to take over every partition and read the 200 new records", () -> {
            c1.pollInto(consumed, "takeover");
            return c1.consumer.assignment().size() == PARTITIONS && consumed.size() >= 600;
        });
        c1.consumer.commitSync();
        doc.put("takeover_assignment", partitions(c1.consumer.assignment()));
        c1.consumer.close();
        doc.put("c1_events", c1.events);
        doc.put("c2_events", c2.events);
    }

    /** Produces {@code perPartition} records to each partition, values "STAGE-P-I", and waits for every ack. */
    static void produce(KafkaProducer<byte[], byte[]> producer, String topic, String stage, int perPartition) {
        List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            for (int i = 0; i < perPartition; i++) {
                byte[] value = (stage + "-" + p + "-" + i).getBytes(StandardCharsets.UTF_8);
                acks.add(producer.send(new ProducerRecord<>(topic, p, null, value)));
            }
        }
        producer.flush();
        for (java.util.concurrent.Future<?> ack : acks) {
            try {
                ack.get();
            } catch (Exception e) {
                throw Compat.fail("produce " + stage + ": " + e);
            }
        }
    }

    static Map<String, Long> committed(Admin admin, String group) {
        Map<TopicPartition, OffsetAndMetadata> offsets = Compat.get("listConsumerGroupOffsets",
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<String, Long> out = new TreeMap<>();
        offsets.forEach((tp, om) -> out.put(Integer.toString(tp.partition()), om == null ? null : om.offset()));
        return out;
    }

    static List<Integer> partitions(Collection<TopicPartition> tps) {
        List<Integer> out = new ArrayList<>();
        tps.forEach(tp -> out.add(tp.partition()));
        out.sort(null);
        return out;
    }

    /** One group member and what its rebalance listener saw. */
    static final class Member {
        final String name;
        final KafkaConsumer<byte[], byte[]> consumer;
        final List<Map<String, Object>> events = new ArrayList<>();

        Member(String name, String bootstrap, String topic, String group, String assignor) {
            this.name = name;
            Properties props = new Properties();
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            // Rebalances are noticed at the next heartbeat; a short interval
            // only makes the scenario quicker, nothing depends on it.
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
            props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, switch (assignor) {
                case "range" -> RangeAssignor.class.getName();
                case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
                default -> throw Compat.fail("unknown assignor " + assignor);
            });
            consumer = Compat.consumer(bootstrap, props);
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    event("revoked", partitions);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    event("assigned", partitions);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    event("lost", partitions);
                }
            });
        }

        private void event(String kind, Collection<TopicPartition> partitions) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("event", kind);
            e.put("partitions", Groups.partitions(partitions));
            events.add(e);
        }

        void pollInto(List<Map<String, Object>> consumed, String stage) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("by", name);
                out.put("stage", stage);
                out.put("partition", r.partition());
                out.put("offset", r.offset());
                out.put("value", new String(r.value(), StandardCharsets.UTF_8));
                consumed.add(out);
            }
        }
    }
}
