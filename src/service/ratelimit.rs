//! Per-client token buckets for the public citizen downloads (`DDCC_DOWNLOAD_RATE`).
//!
//! Each client IP has a bucket of `burst` tokens refilled at `rate`; a request takes one, or is refused with
//! the time until the next token. Every request counts, unknown tokens included, so guessing download links
//! is as slow as fetching real ones. Memory is bounded: a bucket that has refilled completely carries no
//! information and is dropped by the periodic sweep, and past [`MAX_CLIENTS`] buckets new clients share
//! one overflow bucket (a flood of addresses then slows itself, not the known clients).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Most clients tracked at once.
pub const MAX_CLIENTS: usize = 100_000;
/// How often idle buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Requests per period, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `N/s`, `N/min` or `N/h` (e.g. `30/min`); the burst defaults to N.
    pub fn parse(text: &str, burst: Option<u32>) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "DDCC_DOWNLOAD_RATE must be like 30/min (N/s, N/min, N/h), not {text:?}"
            ))
        };
        let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let seconds = match period.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        let burst = burst.unwrap_or(count);
        if count == 0 || burst == 0 {
            return Err(Error::Config(
                "DDCC_DOWNLOAD_RATE and DDCC_DOWNLOAD_BURST must be at least 1".into(),
            ));
        }
        Ok(Rate {
            per_second: f64::from(count) / seconds,
            burst,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    clients: HashMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
    swept: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    pub fn new(rate: Rate) -> Self {
        RateLimiter {
            rate,
            buckets: Mutex::new(Buckets {
                clients: HashMap::new(),
                overflow: None,
                swept: Instant::now(),
            }),
        }
    }

    /// Takes a token for `client`; `Err(wait)` when there is none, `wait` being the time until the next.
    pub fn check(&self, client: IpAddr) -> std::result::Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> std::result::Result<(), Duration> {
        let mut guard = match self.buckets.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let buckets = &mut *guard;
        if now.saturating_duration_since(buckets.swept) >= SWEEP_EVERY {
            let rate = self.rate;
            buckets
                .clients
                .retain(|_, b| refilled(rate, *b, now) < f64::from(rate.burst));
            buckets.swept = now;
        }
        let full = Bucket {
            tokens: f64::from(self.rate.burst),
            updated: now,
        };
        let bucket = if buckets.clients.contains_key(&client) || buckets.clients.len() < MAX_CLIENTS
        {
            buckets.clients.entry(client).or_insert(full)
        } else {
            buckets.overflow.get_or_insert(full)
        };
        bucket.tokens = refilled(self.rate, *bucket, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.rate.per_second,
            ))
        }
    }

    /// Clients tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(g) => g.clients.len(),
            Err(poisoned) => poisoned.into_inner().clients.len(),
        }
    }
}

fn refilled(rate: Rate, bucket: Bucket, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate.per_second).min(f64::from(rate.burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let r = Rate::parse("30/min", None).unwrap();
        assert_eq!(r.burst, 30);
        assert!((r.per_second - 0.5).abs() < 1e-9);
        assert_eq!(Rate::parse("5/s", Some(2)).unwrap().burst, 2);
        for bad in ["30", "x/min", "30/day", "0/min"] {
            assert!(Rate::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn burst_then_refused_then_refilled_and_swept() {
        let limiter = RateLimiter::new(Rate::parse("60/min", Some(3)).unwrap());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(a, t0).is_ok());
        }
        let wait = limiter.check_at(a, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(limiter.check_at(b, t0).is_ok(), "other clients unaffected");
        assert!(limiter.check_at(a, t0 + Duration::from_secs(1)).is_ok());
        // After a sweep interval both buckets are full again: forgotten.
        let later = t0 + SWEEP_EVERY + Duration::from_secs(5);
        assert!(limiter
            .check_at("192.0.2.3".parse().unwrap(), later)
            .is_ok());
        assert_eq!(limiter.tracked(), 1);
    }
}
