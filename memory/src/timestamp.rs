//! Timestamps as AgentCore's REST-JSON protocol carries them: epoch seconds.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, kept as milliseconds since the Unix epoch and sent as
/// fractional epoch seconds (how botocore serialises `timestamp` members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// This time plus `days`.
    pub fn plus_days(self, days: u32) -> Self {
        Timestamp(self.0.saturating_add(u64::from(days) * 86_400_000))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0 as f64 / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(f64),
            Text(String),
        }
        let seconds = match Wire::deserialize(deserializer)? {
            Wire::Number(n) => n,
            Wire::Text(t) => t
                .trim()
                .parse::<f64>()
                .map_err(|_| serde::de::Error::custom("timestamp must be epoch seconds"))?,
        };
        if !seconds.is_finite() || !(0.0..=1.0e11).contains(&seconds) {
            return Err(serde::de::Error::custom(
                "timestamp must be non-negative epoch seconds",
            ));
        }
        Ok(Timestamp((seconds * 1000.0).round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_epoch_seconds() {
        let t: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(t.millis(), 1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
        assert!(serde_json::from_str::<Timestamp>("-5").is_err());
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }
}
