//! Egress rules for addresses a user can make the product connect to (client metadata
//! documents, remote MCP servers; databases next). Such a URL is a way into the operator's
//! network (SSRF): only public addresses are reached unless the host is listed by a deployment
//! setting.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A `reqwest` resolver that keeps public addresses only, except for listed hosts (lowercase).
/// The addresses it returns are the ones connected to, so a DNS answer that changes between a
/// check and the connection gains nothing. IP literals never reach a resolver: callers judge
/// them before sending.
pub struct PublicOnly {
    pub allow: Arc<[String]>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let listed = self.allow.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| listed || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err("no public address".into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared
/// (CGNAT), unique-local, multicast, documentation, benchmarking or unspecified. IPv4-mapped
/// IPv6 addresses are judged by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Site-local (fec0::/10): deprecated, but still routed inside some networks.
        || (first & 0xffc0) == 0xfec0
        // Teredo (2001::/32) embeds an IPv4 server and client address.
        || first == 0x2001 && ip.segments()[1] == 0
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) and 6to4 (2002::/16) reach
        // IPv4 space through a translator; IPv4-compatible ::a.b.c.d likewise.
        || first == 0x0064 && ip.segments()[1] == 0xff9b
        || first == 0x2002
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b:1::a00:1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "224.0.0.1",
            "fec0::1",
            "feff::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "151.101.1.1",
            "2606:4700::1111",
            "2001:4860::8888",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
