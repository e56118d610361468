package dev.sediment.compat;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;

/**
 * Kafka's AdminClient against the broker: the topic, config, partition,
 * record, offset and group operations the broker serves.
 *
 * <p>usage: AdminOps BOOTSTRAP TOPIC GROUP
 *
 * <p>Prints one JSON object: for each step what the client observed, errors
 * as the exception's simple class name ("ok" when the call succeeded).
 */
public final class AdminOps {
    private AdminOps() {}

    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        Map<String, Object> doc = new LinkedHashMap<>();
        try (Admin admin = Compat.admin(bootstrap)) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);

            // createTopics with configs; again → TopicExistsException.
            NewTopic newTopic = new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "segment.bytes", "1048576"));
            var created = admin.createTopics(List.of(newTopic));
            doc.put("create", Compat.outcome(created.all()));
            doc.put("create_result_partitions", Compat.get("numPartitions", created.numPartitions(topic)));
            doc.put("create_again", Compat.outcome(admin.createTopics(List.of(newTopic)).all()));
            doc.put("list_topics_contains", Compat.get("listTopics", admin.listTopics().names()).contains(topic));

            // describeTopics by name (by id: TopicIds.java).
            TopicDescription byName = Compat.get("describeTopics by name",
                    admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            doc.put("describe_by_name", describe(byName));
            doc.put("describe_unknown_name", Compat.outcome(
                    admin.describeTopics(List.of(topic + "-missing")).allTopicNames()));

            doc.put("configs_created", configs(admin, resource));

            // incrementalAlterConfigs: set one, delete one; a bad value is refused.
            doc.put("incremental_alter", Compat.outcome(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("segment.bytes", null), AlterConfigOp.OpType.DELETE))))
                    .all()));
            doc.put("configs_altered", configs(admin, resource));
            doc.put("incremental_alter_bad_value", Compat.outcome(admin.incrementalAlterConfigs(Map.of(resource,
                    List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "not-a-number"),
                            AlterConfigOp.OpType.SET)))).all()));
            doc.put("incremental_alter_validate_only", Compat.outcome(admin.incrementalAlterConfigs(
                    Map.of(resource, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "1000"),
                            AlterConfigOp.OpType.SET))),
                    new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all()));
            doc.put("configs_after_bad_and_validate_only", configs(admin, resource));

            // createPartitions: grow to 5; shrinking is refused.
            doc.put("grow_partitions", Compat.outcome(
                    admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all()));
            doc.put("partitions_after_grow", Compat.get("describeTopics", admin.describeTopics(List.of(topic))
                    .allTopicNames()).get(topic).partitions().size());
            doc.put("shrink_partitions", Compat.outcome(
                    admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all()));

            // 10 records in partition 0 (CreateTime 1000 + i, so the last has the max timestamp).
            try (KafkaProducer<byte[], byte[]> producer = Compat.producer(bootstrap, new Properties())) {
                for (int i = 0; i < 10; i++) {
                    try {
                        producer.send(new ProducerRecord<>(topic, 0, 1_000L + i, null,
                                ("r" + i).getBytes(java.nio.charset.StandardCharsets.UTF_8))).get();
                    } catch (Exception e) {
                        throw Compat.fail("produce: " + e);
                    }
                }
            }
            TopicPartition p0 = new TopicPartition(topic, 0);
            doc.put("offsets_before_delete", offsets(admin, p0));

            // deleteRecords up to 4; beyond the high watermark → OffsetOutOfRangeException.
            DeletedRecords deleted = Compat.get("deleteRecords",
                    admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(p0));
            doc.put("delete_records_low_watermark", deleted.lowWatermark());
            doc.put("delete_records_beyond_hw", Compat.outcome(
                    admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(100))).all()));
            doc.put("offsets_after_delete", offsets(admin, p0));

            // A group with a committed offset, and no members.
            Properties props = new Properties();
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            try (KafkaConsumer<byte[], byte[]> consumer = Compat.consumer(bootstrap, props)) {
                consumer.assign(List.of(p0));
                consumer.commitSync(Map.of(p0, new OffsetAndMetadata(7, "admin-ops")));
            }
            doc.put("list_consumer_groups", listConsumerGroups(admin));
            List<String> groupIds = new ArrayList<>();
            Compat.get("listGroups", admin.listGroups(ListGroupsOptions.forConsumerGroups()).all())
                    .forEach(g -> groupIds.add(g.groupId() + ":" + g.type().map(Object::toString).orElse("?")
                            + ":" + g.groupState().map(Object::toString).orElse("?")));
            doc.put("list_groups", groupIds);
            ConsumerGroupDescription described = Compat.get("describeConsumerGroups",
                    admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
            Map<String, Object> description = new LinkedHashMap<>();
            description.put("group_id", described.groupId());
            description.put("state", described.groupState().toString());
            description.put("members", described.members().size());
            description.put("coordinator", described.coordinator().id());
            doc.put("describe_group", description);
            Map<TopicPartition, OffsetAndMetadata> committed = Compat.get("listConsumerGroupOffsets",
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            Map<String, Object> committedJson = new TreeMap<>();
            committed.forEach((tp, om) -> committedJson.put(tp.toString(),
                    List.of(om.offset(), om.metadata())));
            doc.put("group_offsets", committedJson);

            // deleteTopics: gone from listTopics and describeTopics.
            doc.put("delete_topic", Compat.outcome(admin.deleteTopics(List.of(topic)).all()));
            doc.put("list_topics_contains_after_delete",
                    Compat.get("listTopics", admin.listTopics().names()).contains(topic));
            doc.put("describe_after_delete", Compat.outcome(admin.describeTopics(List.of(topic)).allTopicNames()));
            doc.put("delete_again", Compat.outcome(admin.deleteTopics(List.of(topic)).all()));
        }
        Json.emit(doc);
    }

    /** The call many applications still make (deprecated for removal in 4.x, in favour of listGroups). */
    @SuppressWarnings("removal")
    static List<String> listConsumerGroups(Admin admin) {
        Collection<org.apache.kafka.clients.admin.ConsumerGroupListing> groups = Compat.get("listConsumerGroups",
                admin.listConsumerGroups().all());
        List<String> ids = new ArrayList<>();
        groups.forEach(g -> ids.add(g.groupId()));
        return ids;
    }

    static Map<String, Object> describe(TopicDescription d) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("name", d.name());
        out.put("topic_id", d.topicId().toString());
        out.put("internal", d.isInternal());
        List<Map<String, Object>> partitions = new ArrayList<>();
        d.partitions().forEach(p -> {
            Map<String, Object> part = new LinkedHashMap<>();
            part.put("partition", p.partition());
            part.put("leader", p.leader() == null ? null : p.leader().id());
            part.put("replicas", p.replicas().size());
            part.put("isr", p.isr().size());
            partitions.add(part);
        });
        out.put("partitions", partitions);
        return out;
    }

    /** The topic's configs that are not defaults: name → [value, source]; plus retention.ms and segment.bytes always. */
    static Map<String, Object> configs(Admin admin, ConfigResource resource) {
        Config config = Compat.get("describeConfigs",
                admin.describeConfigs(List.of(resource)).all()).get(resource);
        Map<String, Object> out = new TreeMap<>();
        for (ConfigEntry e : config.entries()) {
            if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
                    || Set.of("retention.ms", "segment.bytes").contains(e.name())) {
                out.put(e.name(), List.of(String.valueOf(e.value()), e.source().toString()));
            }
        }
        return out;
    }

    static Map<String, Object> offsets(Admin admin, TopicPartition tp) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("earliest", listOffset(admin, tp, OffsetSpec.earliest()));
        out.put("latest", listOffset(admin, tp, OffsetSpec.latest()));
        out.put("max_timestamp", listOffset(admin, tp, OffsetSpec.maxTimestamp()));
        out.put("for_timestamp_1005", listOffset(admin, tp, OffsetSpec.forTimestamp(1005)));
        return out;
    }

    static long listOffset(Admin admin, TopicPartition tp, OffsetSpec spec) {
        ListOffsetsResult.ListOffsetsResultInfo info = Compat.get("listOffsets " + spec,
                admin.listOffsets(Map.of(tp, spec)).partitionResult(tp));
        return info.offset();
    }
}
