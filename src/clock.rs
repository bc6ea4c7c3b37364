//! What time it is, for everything that signs or judges a certificate's expiry: `iat`, `exp`, and whether a
//! stored certificate is due for renewal.
//!
//! Production reads the system clock. Tests of renewal need a certificate to be weeks old without waiting
//! weeks, against the real binary and real servers, so the clock can be offset by a fixed number of seconds
//! (`DDCC_TEST_CLOCK_OFFSET`, see [`crate::configuration`]). That setting is environment-only, hidden from
//! `--help`, and every start-up with it logs a warning: a service whose clock is moved signs certificates
//! that claim a false issue time.

use time::OffsetDateTime;

/// The system clock, optionally moved by a fixed offset (tests only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset: time::Duration,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// The system clock moved by `seconds` (negative: into the past). For tests.
    pub fn offset_by(seconds: i64) -> Self {
        Clock {
            offset: time::Duration::seconds(seconds),
        }
    }

    /// Now, by this clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }

    /// Now, Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Seconds this clock is moved from the system clock (0 in production).
    pub fn offset_seconds(&self) -> i64 {
        self.offset.whole_seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_is_that_far_from_the_system_clock() {
        let day = 24 * 3600;
        let moved = Clock::offset_by(30 * day).unix();
        let system = Clock::system().unix();
        assert!(
            (moved - system - 30 * day).abs() <= 1,
            "{moved} vs {system}"
        );
        assert_eq!(Clock::system().offset_seconds(), 0);
    }
}
