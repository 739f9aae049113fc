//! Where a request comes from, as both daemons count it for rate limits: the socket peer, or
//! the last `X-Forwarded-For` hop when a trusted proxy in front sets it (the hop it appended
//! itself; earlier hops come from the client and can be anything). Limits count IPv6 clients
//! per /64, the block one subscriber usually holds, so a client cannot get a fresh budget per
//! address.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

/// The client's address: the last `X-Forwarded-For` hop if `trust_forwarded_for` and it
/// parses, else `peer`.
pub fn address(peer: IpAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    trust_forwarded_for
        .then(|| forwarded_for(headers))
        .flatten()
        .unwrap_or(peer)
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// What a rate limit counts: IPv4 as it is (IPv4-mapped IPv6 too), IPv6 as its /64.
pub fn block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_counts_only_when_trusted_and_only_its_last_hop() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1".parse().unwrap());
        headers.append("x-forwarded-for", "6.6.6.6, 2.2.2.2".parse().unwrap());
        assert_eq!(address(peer, &headers, false), peer);
        assert_eq!(
            address(peer, &headers, true),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        let mut garbage = HeaderMap::new();
        garbage.append("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(address(peer, &garbage, true), peer);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(block(a), block(b));
        assert_ne!(block(a), block(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(block(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
