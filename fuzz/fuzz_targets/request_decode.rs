//! libFuzzer target for the broker's request path on our own codec
//! (`sediment-protocol`), from socket bytes to a decoded request body:
//! `FrameDecoder` → `header_prefix` → `decode_header` →
//! `Request::decode_body::<T>()`, the way `server/connection.rs` and
//! `handlers::dispatch` run it. It also decodes the input as every served
//! request type at every advertised version, and every request type the
//! codec knows but the broker does not advertise yet (the security APIs
//! until their handlers exist) at every version the codec knows, whatever
//! its header says.
//!
//! The contract: no input panics or aborts. Run with `-malloc_limit_mb` to
//! catch decoders that allocate far more than the input (see README.md).
//! Bodies decode as the handlers' types through `Request::body_decodes`,
//! which `broker/tests/decode_fuzz.rs` shares, running the same paths under
//! proptest on stable.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sediment_broker::protocol::codec::{decode_header, header_prefix, Request};
use sediment_broker::protocol::frame::FrameDecoder;
use sediment_broker::protocol::versions::{self, ADVERTISED};
use sediment_protocol::messages::CODEC_APIS;
use sediment_protocol::{ApiKey, RequestHeader};

/// Frame cap: small, so a declared size cannot reserve more than the
/// malloc limit suggested in README.md.
const MAX_FRAME: usize = 1 << 20;


/// One frame body, as the connection handles it.
fn decode_frame(frame: Bytes) {
    let Ok(prefix) = header_prefix(&frame) else {
        return;
    };
    let Ok(key) = ApiKey::try_from(prefix.api_key) else {
        return;
    };
    if !versions::is_decoded(prefix.api_key, prefix.api_version) {
        return;
    }
    if let Ok(request) = decode_header(frame, key, prefix.api_version) {
        let _ = request.body_decodes();
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The input as a byte stream off a socket: split into frames.
    let decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(data);
    for _ in 0..=data.len() / 4 {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => decode_frame(frame),
            Ok(None) | Err(_) => break,
        }
    }

    // 2. The input as one frame body.
    let frame = Bytes::copy_from_slice(data);
    decode_frame(frame.clone());

    // 3. The input after its first byte, as header + body and as a bare body
    //    of the (API, version) the first byte picks.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let not_yet_advertised = CODEC_APIS
        .iter()
        .filter(|(key, _, _)| versions::advertised(*key as i16).is_none())
        .flat_map(|(key, range, _)| (range.min..=range.max).map(move |v| (*key, v)));
    let pairs: Vec<(ApiKey, i16)> = ADVERTISED
        .iter()
        .flat_map(|r| (r.min..=r.max).map(move |v| (r.key, v)))
        .chain(not_yet_advertised)
        .collect();
    let (key, version) = pairs[usize::from(pick) % pairs.len()];
    let rest = Bytes::copy_from_slice(rest);
    if let Ok(request) = decode_header(rest.clone(), key, version) {
        let _ = request.body_decodes();
    }
    let _ = Request {
        api_key: key,
        version,
        header: RequestHeader::default(),
        body: rest,
    }
    .body_decodes();
});
