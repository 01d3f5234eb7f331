//! Reading back one histogram as a results file stores it: HdrHistogram's V2 encoding,
//! deflated (`V2DeflateSerializer`).
//!
//! hdrhistogram's own `Deserializer` trusts the `payload_len` that the V2 header (inside
//! the compressed data) declares and sizes a buffer to it before reading a byte of the
//! counts: 80 bytes of crafted base64 in a results folder made `report`, `compare` and
//! `merge` allocate 4 GiB. Here the data is inflated first, never past what the header's
//! own bounds allow the counts to take, and the declared length must be what inflated;
//! only then does the crate decode it, from bytes it can no longer be asked to outgrow.

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::io::Read;

/// The cookie of a deflated V2 histogram (hdrhistogram's `V2_COMPRESSED_COOKIE`).
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// The cookie of a plain V2 histogram (hdrhistogram's `V2_COOKIE`), the inflated data's.
const V2_COOKIE: u32 = 0x1c84_9313;
/// The plain V2 header: cookie, payload length, normalizing offset, significant digits,
/// lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER_LEN: usize = 40;
/// The longest one count takes in V2 (a LEB128 varint of at most 9 bytes).
const MAX_BYTES_PER_COUNT: usize = 9;

/// Why an encoded histogram cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum EncodedHistogramError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not a deflated V2 histogram (the only encoding stampede writes).
    #[error("not a deflated V2 histogram (cookie {cookie:#010x})")]
    NotV2Deflate { cookie: u32 },
    /// Shorter than its headers, or its deflated data is broken.
    #[error("truncated or corrupt: {0}")]
    Corrupt(String),
    /// Its header's lowest/highest values or significant digits make no histogram.
    #[error("its header declares no valid histogram ({low}..{high}, {digits} digits)")]
    InvalidBounds { low: u64, high: u64, digits: u32 },
    /// Its header declares more counts than its own bounds can have.
    #[error(
        "its header declares {declared} bytes of counts, more than the {allowed} its own \
         bounds can take"
    )]
    PayloadTooLong { declared: usize, allowed: usize },
    /// What inflated is not the length its header declares.
    #[error("its header declares {declared} bytes of counts, but {inflated} inflated")]
    PayloadLengthMismatch { declared: usize, inflated: usize },
    /// The counts themselves do not decode.
    #[error("{0}")]
    Counts(String),
}

/// One histogram from base64 of its deflated V2 encoding, allocating no more than its
/// declared bounds take (see the module's docs).
pub fn decode_base64(text: &str) -> Result<Histogram<u64>, EncodedHistogramError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    decode_v2_deflate(&bytes)
}

/// One histogram from its deflated V2 encoding (see [`decode_base64`]).
pub fn decode_v2_deflate(bytes: &[u8]) -> Result<Histogram<u64>, EncodedHistogramError> {
    let short = || EncodedHistogramError::Corrupt("shorter than its header".into());
    let cookie = be_u32(bytes, 0).ok_or_else(short)?;
    if cookie != V2_DEFLATE_COOKIE {
        return Err(EncodedHistogramError::NotV2Deflate { cookie });
    }
    let compressed_len = be_u32(bytes, 4).ok_or_else(short)? as usize;
    let compressed = &bytes[8..];
    let compressed = &compressed[..compressed_len.min(compressed.len())];
    let mut inflater = flate2::read::ZlibDecoder::new(compressed);

    let mut plain = vec![0u8; V2_HEADER_LEN];
    inflater
        .read_exact(&mut plain)
        .map_err(|e| EncodedHistogramError::Corrupt(format!("its V2 header: {e}")))?;
    let inner = be_u32(&plain, 0).ok_or_else(short)?;
    if inner != V2_COOKIE {
        return Err(EncodedHistogramError::Corrupt(format!(
            "inflated data has cookie {inner:#010x}, not a V2 histogram's"
        )));
    }
    let declared = be_u32(&plain, 4).ok_or_else(short)? as usize;
    let digits = be_u32(&plain, 12).ok_or_else(short)?;
    let low = be_u64(&plain, 16).ok_or_else(short)?;
    let high = be_u64(&plain, 24).ok_or_else(short)?;
    let allowed = counts_allowed(low, high, digits)?;
    if declared > allowed {
        return Err(EncodedHistogramError::PayloadTooLong { declared, allowed });
    }

    // One byte past the declared length, so that counts longer than declared show.
    let limit = (declared as u64).saturating_add(1);
    let inflated = inflater
        .take(limit)
        .read_to_end(&mut plain)
        .map_err(|e| EncodedHistogramError::Corrupt(format!("its counts: {e}")))?;
    if inflated != declared {
        return Err(EncodedHistogramError::PayloadLengthMismatch { declared, inflated });
    }
    // The plain V2 bytes, whose declared length is now what they hold: the crate's
    // buffer is no larger than what is already in memory.
    Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(|e| EncodedHistogramError::Counts(e.to_string()))
}

/// The most bytes of counts a histogram with these bounds can encode to: every count
/// it can hold, at the longest a count takes.
fn counts_allowed(low: u64, high: u64, digits: u32) -> Result<usize, EncodedHistogramError> {
    let invalid = || EncodedHistogramError::InvalidBounds { low, high, digits };
    // The crate caps significant digits at 5, so such a histogram holds at most a few
    // million counts (tens of MB, as the crate's own decoder would allocate for it).
    let sigfig = u8::try_from(digits).map_err(|_| invalid())?;
    let h = Histogram::<u64>::new_with_bounds(low, high, sigfig).map_err(|_| invalid())?;
    h.distinct_values()
        .checked_mul(MAX_BYTES_PER_COUNT)
        .ok_or_else(invalid)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Crafted encodings, for this crate's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{V2_COOKIE, V2_DEFLATE_COOKIE};
    use base64::Engine;
    use std::io::Write;

    /// A deflated V2 histogram whose header declares `payload_len` bytes of counts but
    /// holds only `counts`, as base64: what a crafted results file holds.
    pub(crate) fn crafted(payload_len: u32, low: u64, high: u64, counts: &[u8]) -> String {
        let mut plain = Vec::new();
        plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
        plain.extend_from_slice(&payload_len.to_be_bytes());
        plain.extend_from_slice(&0u32.to_be_bytes());
        plain.extend_from_slice(&3u32.to_be_bytes());
        plain.extend_from_slice(&low.to_be_bytes());
        plain.extend_from_slice(&high.to_be_bytes());
        plain.extend_from_slice(&1.0f64.to_be_bytes());
        plain.extend_from_slice(counts);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let deflated = z.finish().unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(&V2_DEFLATE_COOKIE.to_be_bytes());
        out.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
        out.extend_from_slice(&deflated);
        base64::engine::general_purpose::STANDARD.encode(out)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::crafted;
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

    #[test]
    fn a_huge_declared_payload_is_refused_before_any_buffer_is_sized_to_it() {
        // What the audit found: ~80 bytes of base64 declaring 4 GiB of counts.
        let text = crafted(u32::MAX, 1, 60_000_000, &[2]);
        assert!(text.len() < 100, "{}", text.len());
        let err = decode_base64(&text).unwrap_err();
        assert!(
            matches!(err, EncodedHistogramError::PayloadTooLong { declared, .. }
                if declared == u32::MAX as usize),
            "{err}"
        );
        assert!(
            err.to_string().contains("4294967295 bytes of counts"),
            "{err}"
        );
        // Within the bounds' allowance but more than the data holds: refused as well.
        let err = decode_base64(&crafted(1000, 1, 60_000_000, &[2])).unwrap_err();
        assert!(
            matches!(
                err,
                EncodedHistogramError::PayloadLengthMismatch {
                    declared: 1000,
                    inflated: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn plain_v2_and_broken_headers_are_errors_not_panics() {
        use hdrhistogram::serialization::V2Serializer;
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(5).unwrap();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        assert!(matches!(
            decode_v2_deflate(&plain),
            Err(EncodedHistogramError::NotV2Deflate { .. })
        ));
        for bytes in [
            &[][..],
            &[0x1c, 0x84, 0x93, 0x14][..],
            &[0x1c, 0x84, 0x93, 0x14, 0, 0, 0, 9, 1, 2][..],
        ] {
            assert!(decode_v2_deflate(bytes).is_err());
        }
        let err = decode_base64(&crafted(1, 0, 10, &[2])).unwrap_err();
        assert!(
            matches!(err, EncodedHistogramError::InvalidBounds { .. }),
            "{err}"
        );
    }

    #[test]
    fn what_the_serializer_writes_reads_back() {
        let mut h = crate::metrics::new_histogram();
        for v in [1, 7, 900, 45_000, 59_000_000] {
            h.record(v).unwrap();
        }
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut bytes)
            .unwrap();
        let back = decode_v2_deflate(&bytes).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let empty = crate::metrics::new_histogram();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&empty, &mut bytes)
            .unwrap();
        assert_eq!(decode_v2_deflate(&bytes).unwrap().len(), 0);
    }
}
