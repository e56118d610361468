package dev.sediment.compat;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;

/**
 * The admin calls of DescribeCluster, DescribeLogDirs and OffsetDelete.
 *
 * <p>usage: AdminNewApis BOOTSTRAP TOPIC GROUP
 *
 * <p>Prints describeCluster's cluster id, nodes and controller;
 * describeLogDirs' directories and the topic's replicas in them;
 * deleteConsumerGroupOffsets while a member subscribes to the topic
 * (GroupSubscribedToTopicException in Kafka) and after it left, and the
 * committed offsets before and after. Errors are the exception's simple
 * class name, "ok" when the call succeeded.
 */
public final class AdminNewApis {
    private AdminNewApis() {}

    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        Map<String, Object> doc = new LinkedHashMap<>();
        try (Admin admin = Compat.admin(bootstrap)) {
            Compat.get("createTopics", admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all());

            DescribeClusterResult cluster = admin.describeCluster();
            Map<String, Object> clusterJson = new LinkedHashMap<>();
            clusterJson.put("cluster_id", Compat.get("describeCluster clusterId", cluster.clusterId()));
            List<String> nodes = new java.util.ArrayList<>();
            for (Node n : Compat.get("describeCluster nodes", cluster.nodes())) {
                nodes.add(n.id() + "@" + n.host() + ":" + n.port());
            }
            clusterJson.put("nodes", nodes);
            Node controller = Compat.get("describeCluster controller", cluster.controller());
            clusterJson.put("controller", controller == null ? null : controller.id());
            doc.put("describe_cluster", clusterJson);

            Map<Integer, Map<String, LogDirDescription>> dirs = Compat.get("describeLogDirs",
                    admin.describeLogDirs(List.of(0)).allDescriptions());
            Map<String, Object> dirsJson = new TreeMap<>();
            dirs.getOrDefault(0, Map.of()).forEach((path, d) -> {
                Map<String, Object> replicas = new TreeMap<>();
                for (Map.Entry<TopicPartition, ReplicaInfo> r : d.replicaInfos().entrySet()) {
                    if (r.getKey().topic().equals(topic)) {
                        replicas.put(r.getKey().toString(), r.getValue().size());
                    }
                }
                Map<String, Object> dirJson = new LinkedHashMap<>();
                dirJson.put("error", d.error() == null ? null : d.error().getClass().getSimpleName());
                dirJson.put("replicas", replicas);
                dirsJson.put(path, dirJson);
            });
            doc.put("describe_log_dirs", dirsJson);

            TopicPartition p0 = new TopicPartition(topic, 0);
            TopicPartition p1 = new TopicPartition(topic, 1);
            Properties props = new Properties();
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            try (KafkaConsumer<byte[], byte[]> member = Compat.consumer(bootstrap, props)) {
                member.subscribe(List.of(topic));
                Compat.await("the member to be assigned both partitions", () -> {
                    member.poll(java.time.Duration.ofMillis(200));
                    return member.assignment().size() == 2;
                });
                member.commitSync(Map.of(p0, new OffsetAndMetadata(0), p1, new OffsetAndMetadata(0)));
                doc.put("delete_offsets_while_subscribed", Compat.outcome(
                        admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all()));
            }
            doc.put("committed_before", Groups.committed(admin, group));
            doc.put("delete_offsets", Compat.outcome(admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all()));
            doc.put("committed_after", Groups.committed(admin, group));
            doc.put("delete_offsets_unknown_group", Compat.outcome(
                    admin.deleteConsumerGroupOffsets(group + "-missing", Set.of(p0)).all()));
        }
        Json.emit(doc);
    }
}
