//! Per-client token buckets: the citizen downloads (`DDCC_DOWNLOAD_RATE`) and the refusals recorded one
//! AuditEvent each (`DDCC_AUDIT_REFUSAL_RATE`).
//!
//! Each client IP has a bucket of `burst` tokens refilled at `rate`; a request takes one, or is refused with
//! the time until the next token. Every request counts, unknown tokens included, so guessing download links
//! is as slow as fetching real ones. Memory is bounded: a bucket that has refilled completely carries no
//! information and is dropped by the periodic sweep, and each table holds at most [`MAX_CLIENTS`] buckets.
//! When the table of addresses is full, a new client shares the bucket of its network (IPv4 /24, IPv6 /64),
//! then of a wider one (IPv4 /16, IPv6 /48), and only when those tables are full too one overflow bucket: a
//! flood of addresses from a few networks slows those networks, not every new citizen.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Most buckets per table (addresses, networks, wide networks).
pub const MAX_CLIENTS: usize = 100_000;
/// How often idle buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Prefix lengths (IPv4, IPv6) of the tables, narrowest first: the address, its network, a wider network.
const LEVELS: [(u8, u8); 3] = [(32, 128), (24, 64), (16, 48)];

/// Requests per period, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `N/s`, `N/min` or `N/h` (e.g. `30/min`); the burst defaults to N. `setting` names the setting in
    /// errors.
    pub fn parse(setting: &str, text: &str, burst: Option<u32>) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "{setting} must be like 30/min (N/s, N/min, N/h), not {text:?}"
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
            return Err(Error::Config(format!(
                "{setting} (and its burst) must be at least 1"
            )));
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
    /// One table per entry of [`LEVELS`], keyed by the client's address masked to that prefix.
    tables: [HashMap<IpAddr, Bucket>; 3],
    overflow: Option<Bucket>,
    swept: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    capacity: usize,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    pub fn new(rate: Rate) -> Self {
        Self::with_capacity(rate, MAX_CLIENTS)
    }

    /// At most `capacity` buckets per table.
    pub fn with_capacity(rate: Rate, capacity: usize) -> Self {
        RateLimiter {
            rate,
            capacity,
            buckets: Mutex::new(Buckets {
                tables: Default::default(),
                overflow: None,
                swept: Instant::now(),
            }),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
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
            for table in &mut buckets.tables {
                table.retain(|_, b| refilled(rate, *b, now) < f64::from(rate.burst));
            }
            buckets.swept = now;
        }
        let full = Bucket {
            tokens: f64::from(self.rate.burst),
            updated: now,
        };
        let mut chosen = None;
        for (table, (v4, v6)) in buckets.tables.iter_mut().zip(LEVELS) {
            let key = network(client, v4, v6);
            if table.contains_key(&key) || table.len() < self.capacity {
                chosen = Some(table.entry(key).or_insert(full));
                break;
            }
        }
        let bucket = match chosen {
            Some(bucket) => bucket,
            None => buckets.overflow.get_or_insert(full),
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

    /// Clients tracked now by their own address (for tests and metrics).
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(g) => g.tables[0].len(),
            Err(poisoned) => poisoned.into_inner().tables[0].len(),
        }
    }
}

/// `ip` with only its first `v4` (IPv4) or `v6` (IPv6) bits kept.
fn network(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
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
        let r = Rate::parse("R", "30/min", None).unwrap();
        assert_eq!(r.burst, 30);
        assert!((r.per_second - 0.5).abs() < 1e-9);
        assert_eq!(Rate::parse("R", "5/s", Some(2)).unwrap().burst, 2);
        for bad in ["30", "x/min", "30/day", "0/min"] {
            assert!(Rate::parse("R", bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn burst_then_refused_then_refilled_and_swept() {
        let limiter = RateLimiter::new(Rate::parse("R", "60/min", Some(3)).unwrap());
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

    #[test]
    fn a_flood_of_addresses_slows_its_networks_not_new_citizens() {
        let limiter = RateLimiter::with_capacity(Rate::parse("R", "1/h", Some(1)).unwrap(), 300);
        let t0 = Instant::now();
        // 300 addresses of 10.0.0.0/16 fill the address table; the next ones share their /24's bucket.
        for i in 0..300u32 {
            let ip = IpAddr::V4((0x0a00_0000 + i).into());
            assert!(limiter.check_at(ip, t0).is_ok());
        }
        assert_eq!(limiter.tracked(), 300);
        assert!(limiter.check_at("10.0.9.1".parse().unwrap(), t0).is_ok());
        assert!(
            limiter.check_at("10.0.9.2".parse().unwrap(), t0).is_err(),
            "same /24: one bucket"
        );
        // A citizen from elsewhere still gets in, and so does an IPv6 client; its /64 is shared.
        assert!(limiter.check_at("192.0.2.7".parse().unwrap(), t0).is_ok());
        assert!(limiter
            .check_at("2001:db8:1:2::1".parse().unwrap(), t0)
            .is_ok());
        assert!(limiter
            .check_at("2001:db8:1:2:ffff::1".parse().unwrap(), t0)
            .is_err());
        assert!(limiter
            .check_at("2001:db8:1:3::1".parse().unwrap(), t0)
            .is_ok());
        assert_eq!(
            network("2001:db8:1:2:3:4:5:6".parse().unwrap(), 32, 64),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network("192.0.2.77".parse().unwrap(), 24, 64),
            "192.0.2.0".parse::<IpAddr>().unwrap()
        );
    }
}
