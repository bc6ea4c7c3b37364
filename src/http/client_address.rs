//! Who the client is: the TCP peer, or, when the peer is one of our own proxies, the address that proxy says
//! it forwarded for (`DDCC_TRUSTED_PROXIES`, `DDCC_FORWARDED_HEADER`).
//!
//! The per-client limits (citizen downloads, verifications, recorded refusals) and the audit records key on
//! this address. Behind a load balancer every request's peer is the balancer, so without it every citizen
//! would share one bucket. A forwarding header is believed only from a trusted peer: anyone else could name
//! any address and so escape their limit.
//!
//! Each proxy appends the address it received the request from, so the list is read from the right: the
//! first address that is not itself a trusted proxy is the client (RFC 7239 §5.2 and §7.4; the same rule as
//! nginx's `real_ip_recursive on`). Addresses to the left of it were written by the client and prove nothing.
//! A value that does not parse ends the walk at the last proxy that wrote a good one.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::error::{Error, Result};

/// Most forwarding hops read from the right; a longer chain is a client padding the header.
const MAX_HOPS: usize = 16;

/// Which header our proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, ingress-nginx, Envoy, HAProxy, cloud load balancers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`.
    Forwarded,
}

/// The proxies whose forwarding header is believed, and which header they write.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// No proxy is trusted: the client is always the TCP peer.
    pub fn none() -> Self {
        TrustedProxies {
            networks: Vec::new(),
            header: ForwardedHeader::XForwardedFor,
        }
    }

    /// Parses `DDCC_TRUSTED_PROXIES`: addresses or CIDR networks separated by commas (e.g.
    /// `10.0.0.0/8, 192.168.1.7, fd00::/8`).
    pub fn parse(text: &str, header: ForwardedHeader) -> Result<Self> {
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        Error::Config(format!(
                            "DDCC_TRUSTED_PROXIES: {item:?} is not an IP address or a CIDR network \
                             (e.g. 10.0.0.0/8)"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustedProxies { networks, header })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is one of our proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let hops: Vec<&str> = headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(','))
            .collect();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let address = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(hop.trim()),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            };
            let Some(address) = address else { break };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The `for=` node of one RFC 7239 forwarded-element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address with an optional port: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
/// Obfuscated identifiers and `unknown` (RFC 7239 §6) are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// An IPv4 client seen through an IPv4-mapped IPv6 address counts as that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list, ForwardedHeader::XForwardedFor).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(proxies("").client(ip("9.9.9.9"), &h), ip("9.9.9.9"));
        assert_eq!(
            proxies("10.0.0.0/8").client(ip("9.9.9.9"), &h),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies("10.0.0.0/8, 192.168.1.7");
        // The client forged the first entry; 10.1.1.1 is our outer proxy.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(p.client(ip("192.168.1.7"), &h), ip("203.0.113.9"));
        // Two header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let p = proxies("10.0.0.0/8");
        assert_eq!(p.client(ip("10.0.0.5"), &HeaderMap::new()), ip("10.0.0.5"));
    }

    #[test]
    fn garbage_stops_at_the_last_good_hop() {
        let p = proxies("10.0.0.0/8");
        let h = headers(&[("x-forwarded-for", "203.0.113.9, not-an-address, 10.0.0.9")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.9"));
        let h = headers(&[("x-forwarded-for", "")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses() {
        let p = proxies("10.0.0.0/8");
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "203.0.113.9:80")]);
        assert_eq!(p.client(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn rfc_7239_forwarded() {
        let p = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::Forwarded).unwrap();
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, For=10.9.9.9;by=10.0.0.1",
        )]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        // X-Forwarded-For is not read when Forwarded is the configured header.
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn a_padded_chain_is_read_only_so_far() {
        let p = proxies("10.0.0.0/8");
        let chain = vec!["10.0.0.3"; 40].join(", ");
        let h = headers(&[("x-forwarded-for", &format!("203.0.113.9, {chain}"))]);
        // Past MAX_HOPS trusted hops the walk stops on the last one read.
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = TrustedProxies::parse("10.0.0.0/8, nonsense", ForwardedHeader::XForwardedFor)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("DDCC_TRUSTED_PROXIES") && e.contains("nonsense"),
            "{e}"
        );
        assert!(proxies("10.1.2.3/8").trusts(ip("10.200.0.1")));
        assert!(proxies("fd00::/8").trusts(ip("fd12::1")));
    }
}
