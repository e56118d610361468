//! A minimal blocking Kafka wire client for tests that need raw control
//! over frames: malformed input, pipelining, crash loops. Encoding and
//! decoding go through the `kafka-protocol` crate.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// One connection to the broker.
pub struct WireClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl WireClient {
    /// Connects with a 30 s read timeout.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            next_correlation_id: 1,
        })
    }

    /// The socket, for writing raw bytes.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Encodes a request (header + body) without the size prefix.
    pub fn encode<T: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &T,
    ) -> (i32, Vec<u8>) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sediment-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        (correlation_id, buf.to_vec())
    }

    /// Sends `body` with a correct size prefix.
    pub fn send_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.stream.write_all(&frame)
    }

    /// Reads one response frame (without its size prefix).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        let mut body =
            vec![0u8; usize::try_from(size).map_err(|_| std::io::Error::other("negative size"))?];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Sends a request and decodes its response.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &Req,
    ) -> std::io::Result<Resp> {
        let (correlation_id, frame) = self.encode(api_key, version, body);
        self.send_frame(&frame)?;
        let mut response = self.read_frame()?;
        let header =
            ResponseHeader::decode(&mut response, api_key.response_header_version(version))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(std::io::Error::other(format!(
                "correlation id {} does not match request {correlation_id}",
                header.correlation_id
            )));
        }
        Resp::decode(&mut response, version).map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Produces one record set to `topic`/`partition` with acks=-1 (v9) and
    /// returns (error code, base offset).
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> std::io::Result<(i16, i64)> {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]);
        let response: ProduceResponse = self.call(ApiKey::Produce, 9, &request)?;
        let partition = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| std::io::Error::other("empty produce response"))?;
        Ok((partition.error_code, partition.base_offset))
    }
}
