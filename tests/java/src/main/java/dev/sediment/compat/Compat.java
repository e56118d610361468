package dev.sediment.compat;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * What every scenario shares: client factories (Kafka's defaults unless a
 * scenario says otherwise), records as JSON, bounded waits, and failing with
 * a one-line reason on stderr and a non-zero exit.
 */
final class Compat {
    private Compat() {}

    /** Longest any single wait in a scenario lasts; the Rust runner bounds the whole run too. */
    static final Duration DEADLINE = Duration.ofSeconds(90);

    /** Exits 1 with {@code message} on stderr (the Rust test prints it). */
    static RuntimeException fail(String message) {
        System.err.println("scenario failed: " + message);
        System.err.flush();
        System.exit(1);
        return new IllegalStateException(message);
    }

    /**
     * Waits for {@code condition}, failing with {@code what} after {@link #DEADLINE}.
     * The condition itself blocks for a while (a bounded consumer poll), so
     * this is no busy loop and no sleep stands in for synchronisation.
     */
    static void await(String what, BooleanSupplier condition) {
        Instant deadline = Instant.now().plus(DEADLINE);
        while (!condition.getAsBoolean()) {
            if (Instant.now().isAfter(deadline)) {
                throw fail("timed out after " + DEADLINE.toSeconds() + " s waiting for " + what);
            }
        }
    }

    static Admin admin(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(props);
    }

    /** A producer with Kafka's defaults (acks=all, idempotence on) plus {@code extra}. */
    static KafkaProducer<byte[], byte[]> producer(String bootstrap, Properties extra) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putAll(extra);
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, Properties extra) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.putAll(extra);
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** The value of a future, or a failure naming {@code what} and the cause. */
    static <T> T get(String what, KafkaFuture<T> future) {
        try {
            return future.get();
        } catch (ExecutionException e) {
            e.getCause().printStackTrace(); // where in the client it failed, for the Rust test's report
            throw fail(what + ": " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw fail(what + ": interrupted");
        }
    }

    /**
     * The simple class name of the exception a future fails with, or "ok":
     * what the error checks compare.
     */
    static String outcome(KafkaFuture<?> future) {
        try {
            future.get();
            return "ok";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw fail("interrupted");
        }
    }

    static String hex(byte[] bytes) {
        return bytes == null ? null : HexFormat.of().formatHex(bytes);
    }

    /** A record as the Rust test compares it: bytes as hex, null stays null. */
    static java.util.Map<String, Object> record(ConsumerRecord<byte[], byte[]> r) {
        java.util.Map<String, Object> out = new java.util.LinkedHashMap<>();
        out.put("partition", r.partition());
        out.put("offset", r.offset());
        out.put("key", hex(r.key()));
        out.put("value", hex(r.value()));
        out.put("headers", headers(r.headers()));
        return out;
    }

    static List<List<String>> headers(Iterable<Header> headers) {
        List<List<String>> out = new ArrayList<>();
        for (Header h : headers) {
            List<String> pair = new ArrayList<>();
            pair.add(h.key());
            pair.add(hex(h.value()));
            out.add(pair);
        }
        return out;
    }
}
