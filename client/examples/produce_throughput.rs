//! Measures producer throughput against a running broker:
//! `cargo run --release -p sediment-client --example produce_throughput -- HOST:PORT [RECORDS] [SIZE] [ACKS]`
//! (ACKS: 0, 1 or all). Prints records/s and MB/s.

use std::time::Instant;

use bytes::Bytes;
use sediment_client::{Acks, ClientBuilder, NewTopic, ProducerConfig, ProducerRecord};

#[tokio::main]
async fn main() -> sediment_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let records: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let acks = match args.get(4).map(String::as_str) {
        Some("0") => Acks::None,
        Some("1") => Acks::Leader,
        _ => Acks::All,
    };
    let topic: std::sync::Arc<str> = format!("throughput-{}", std::process::id()).into();
    let client = ClientBuilder::new(bootstrap).build().await?;
    client
        .admin()
        .create_topic(NewTopic::new(&*topic, 1))
        .await?;
    let producer = client.producer(ProducerConfig {
        acks,
        // Idempotence (the default) needs acks=all.
        idempotence: acks == Acks::All,
        ..ProducerConfig::default()
    })?;
    let value = Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut last = None;
    for _ in 0..records {
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: None,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
            timestamp: None,
        };
        last = Some(producer.enqueue(record).await?);
    }
    producer.flush().await?;
    if let Some(last) = last {
        let meta = last.await?;
        println!("last offset {}", meta.offset);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{records} records of {size} B in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        (records * size) as f64 / secs / 1e6
    );
    Ok(())
}
