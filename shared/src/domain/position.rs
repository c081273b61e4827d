//! Where an event is in the log, as readers of everything page through it (docs/log-scale-out.md,
//! "No global counter").
//!
//! A position is opaque to its readers: they keep the last one they finished and ask for what comes
//! after it. Positions compare as strings, and what the order means depends on the log:
//! - the embedded log has one writer and numbers its events: `<020 sequence>`, a total order of
//!   commits, dense;
//! - the DynamoDB log has no counter (no item every append would have to touch):
//!   `<013 milliseconds>-<016 hex of the stream's hash>-<020 version>`, time order across streams
//!   and version order within one (the adapter never lets a stream's time go backwards), nothing
//!   more: two streams' events of the same millisecond come in hash order, not commit order.
//!
//! Every sequence sorts before every timed position (a sequence starts with `0` in any log of fewer
//! than 10^19 events, a timed position with the first digit of a millisecond count, `1` until 2286),
//! so a table that holds both (events numbered before the upgrade, timed after it) reads the old
//! ones first.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

use super::StreamId;

/// Digits of a sequence position (`u64::MAX` has 20).
const SEQUENCE_DIGITS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LogPosition(String);

impl LogPosition {
    /// Before every event: `read_all` from here reads the whole log.
    pub fn start() -> LogPosition {
        LogPosition(String::new())
    }

    /// The `sequence`-th event of a numbered log (1-based).
    pub fn sequence(sequence: u64) -> LogPosition {
        LogPosition(format!("{sequence:0SEQUENCE_DIGITS$}"))
    }

    /// Event `version` of `stream`, committed at `millis` (milliseconds since the Unix epoch).
    pub fn timed(millis: u64, stream: &StreamId, version: u64) -> LogPosition {
        LogPosition(format!("{millis:013}-{:016x}-{version:020}", stream_hash(stream)))
    }

    /// Before every timed position committed at or after `millis`: `read_all` from here reads the
    /// events of that millisecond on (a reader that re-reads a recent window of a timed log).
    pub fn at_millis(millis: u64) -> LogPosition {
        LogPosition(format!("{millis:013}-{:016x}-{:020}", 0, 0))
    }

    /// Reads a position a reader kept (a checkpoint, a cursor), checking its form.
    pub fn parse(text: &str) -> Option<LogPosition> {
        let position = LogPosition(text.to_string());
        (text.is_empty() || position.as_sequence().is_some() || position.millis().is_some())
            .then_some(position)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of a numbered log's event.
    pub fn as_sequence(&self) -> Option<u64> {
        let digits = self.0.as_bytes();
        (digits.len() == SEQUENCE_DIGITS && digits.iter().all(u8::is_ascii_digit))
            .then(|| self.0.parse().ok())
            .flatten()
    }

    /// The commit time of a timed position, in milliseconds since the Unix epoch.
    pub fn millis(&self) -> Option<u64> {
        let mut parts = self.0.split('-');
        let (millis, hash, version) = (parts.next()?, parts.next()?, parts.next()?);
        let well_formed = parts.next().is_none()
            && millis.len() == 13
            && hash.len() == 16
            && version.len() == SEQUENCE_DIGITS
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && version.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| millis.parse().ok()).flatten()
    }

    /// A number for APIs that want one (Harbor's audit log `id`): the sequence of a numbered log;
    /// for a timed position the milliseconds shifted left by 20 bits, beside 20 bits of the stream's
    /// hash mixed with the version, so that numbers sort by time and differ for events of different
    /// streams or versions in the same millisecond but for a collision in 2^20 (an id of the audit
    /// log, not a key). Fits in an i64 until the year 2248.
    pub fn number(&self) -> u64 {
        if let Some(sequence) = self.as_sequence() {
            return sequence;
        }
        let Some(millis) = self.millis() else { return 0 };
        let mut parts = self.0.split('-').skip(1);
        let hash = parts.next().and_then(|h| u64::from_str_radix(h, 16).ok());
        let version: Option<u64> = parts.next().and_then(|v| v.parse().ok());
        let low = (hash.unwrap_or(0) ^ version.unwrap_or(0).wrapping_mul(0x9e37_79b9)) & 0xf_ffff;
        (millis << 20) | low
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Accepts the string form, and a number (`sequence`, as events recorded before positions carried it).
impl<'de> Deserialize<'de> for LogPosition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LogPosition, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Number(u64),
            Text(String),
        }
        match Form::deserialize(deserializer)? {
            Form::Number(sequence) => Ok(LogPosition::sequence(sequence)),
            Form::Text(text) => LogPosition::parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a log position"))),
        }
    }
}

/// The first 64 bits of the SHA-256 of the stream's name: spreads streams over shards and orders
/// streams' events within one millisecond.
pub fn stream_hash(stream: &StreamId) -> u64 {
    let digest = Sha256::digest(stream.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stream(name: &str) -> StreamId {
        serde_json::from_value(serde_json::json!(name)).unwrap()
    }

    #[test]
    fn sequences_sort_before_timed_positions_and_both_by_their_order() {
        let a = stream("tag/library/a:1");
        let positions = [
            LogPosition::start(),
            LogPosition::sequence(1),
            LogPosition::sequence(2),
            LogPosition::sequence(10u64.pow(19) - 1),
            LogPosition::timed(1_765_000_000_000, &a, 1),
            LogPosition::timed(1_765_000_000_000, &a, 2),
            LogPosition::timed(1_765_000_000_001, &a, 3),
        ];
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn a_position_reads_back_from_its_text_and_from_an_old_sequence_number() {
        let timed = LogPosition::timed(1_765_000_000_123, &stream("access"), 7);
        assert_eq!(timed.millis(), Some(1_765_000_000_123));
        assert_eq!(LogPosition::parse(timed.as_str()), Some(timed.clone()));
        let json = serde_json::to_string(&timed).unwrap();
        assert_eq!(serde_json::from_str::<LogPosition>(&json).unwrap(), timed);
        assert_eq!(
            serde_json::from_str::<LogPosition>("42").unwrap(),
            LogPosition::sequence(42)
        );
        assert_eq!(LogPosition::sequence(42).as_sequence(), Some(42));
        assert_eq!(LogPosition::sequence(42).number(), 42);
        for bad in ["x", "12", "1765000000123-zz-00000000000000000001", "-1"] {
            assert_eq!(LogPosition::parse(bad), None, "{bad}");
            assert!(serde_json::from_value::<LogPosition>(serde_json::json!(bad)).is_err());
        }
    }

    #[test]
    fn numbers_of_timed_positions_sort_by_time_and_tell_streams_apart() {
        let (a, b) = (stream("tag/r:a"), stream("tag/r:b"));
        let early = LogPosition::timed(1_765_000_000_000, &a, 1).number();
        let same_ms = LogPosition::timed(1_765_000_000_000, &b, 1).number();
        let later = LogPosition::timed(1_765_000_000_001, &a, 2).number();
        assert_ne!(early, same_ms);
        assert!(early.max(same_ms) < later);
        assert!(later < i64::MAX as u64);
    }
}
