//! Where a request comes from on the network, for the rate limit of public servers (which have
//! no key to count by): the socket peer, or the last `X-Forwarded-For` hop when
//! `GATEWAY_TRUST_FORWARDED_FOR` says a proxy in front sets it. IPv6 clients are counted per
//! /64, the block one subscriber usually holds, so they cannot get a fresh budget per address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};

/// The caller's address as the rate limit counts it.
pub fn address(request: &Request, trust_forwarded_for: bool) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    shared::client::block(shared::client::address(
        peer,
        request.headers(),
        trust_forwarded_for,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut request = Request::new(Body::empty());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        for value in forwarded {
            request
                .headers_mut()
                .append("x-forwarded-for", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn the_forwarded_address_counts_only_when_trusted_and_only_its_last_hop() {
        let request = request("10.0.0.1:5000", &["1.1.1.1", "6.6.6.6, 2.2.2.2"]);
        assert_eq!(
            address(&request, false),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address(&request, true),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        let garbage = self::request("10.0.0.1:5000", &["not an address"]);
        assert_eq!(
            address(&garbage, true),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        let one = address(&request("[2001:db8:1:2:aaaa::1]:1", &[]), false);
        let other = address(&request("[2001:db8:1:2:bbbb::2]:1", &[]), false);
        let elsewhere = address(&request("[2001:db8:1:3::1]:1", &[]), false);
        assert_eq!(one, other);
        assert_ne!(one, elsewhere);
        let mapped = address(&request("[::ffff:192.0.2.7]:1", &[]), false);
        assert_eq!(mapped, "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
