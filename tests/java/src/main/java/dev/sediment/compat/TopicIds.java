package dev.sediment.compat;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.Uuid;

/**
 * describeTopics(TopicCollection.ofTopicIds(...)): the Java admin client sends
 * Metadata with an empty (not null) topic name beside the id, and Kafka looks
 * the topic up by the id whenever it is non-zero.
 *
 * <p>usage: TopicIds BOOTSTRAP TOPIC
 *
 * <p>Prints the topic described by name and by the id it reported, and the
 * outcome of describing an unknown id (UnknownTopicIdException in Kafka).
 */
public final class TopicIds {
    private TopicIds() {}

    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        Map<String, Object> doc = new LinkedHashMap<>();
        try (Admin admin = Compat.admin(bootstrap)) {
            Compat.get("createTopics", admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all());
            TopicDescription byName = Compat.get("describeTopics by name",
                    admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            doc.put("by_name", AdminOps.describe(byName));
            Uuid id = byName.topicId();
            var byId = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds();
            String outcome = Compat.outcome(byId);
            doc.put("by_id_outcome", outcome);
            doc.put("by_id", outcome.equals("ok") ? AdminOps.describe(Compat.get("by id", byId).get(id)) : null);
            doc.put("unknown_id", Compat.outcome(
                    admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds()));
        }
        Json.emit(doc);
    }
}
