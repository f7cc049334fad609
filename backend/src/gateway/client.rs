//! The client address behind trusted proxies, and the middleware that attaches it.
//!
//! poem's `RealIp` believes `X-Real-IP` and the leftmost `X-Forwarded-For` entry from any
//! peer, and the leftmost entry is whatever the client chose to send. Here forwarding
//! headers count only when the peer is a configured proxy, and the client is the
//! rightmost hop that is not one of them: the first address no trusted proxy vouches for.
use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use poem::{http::HeaderMap, Endpoint, Middleware, Request, Result};
use rfc7239::{NodeIdentifier, NodeName};

/// The networks whose forwarding headers are believed (`TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_hops(headers).into_iter().rev() {
            // A hop that is not an address (`unknown`, an obfuscated name) cannot be
            // attributed: the last hop vouched for stands.
            let Some(ip) = hop else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// Parses one `TRUSTED_PROXIES` entry: a CIDR network or a single address.
pub fn parse_trusted_proxy(s: &str) -> std::result::Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| format!("`{s}` is neither an address nor a CIDR network"))
}

/// The hops of `Forwarded` (RFC 7239) if present, else of `X-Forwarded-For`, left to right
/// (each proxy appends the peer it saw); `None` for a hop that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| rfc7239::parse(value))
            .map(|item| match item.ok()?.forwarded_for {
                Some(NodeIdentifier {
                    name: NodeName::Ip(ip),
                    ..
                }) => Some(ip),
                _ => None,
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .map(|hop| {
            hop.parse::<IpAddr>()
                .ok()
                .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        })
        .collect()
}

/// Whom a limit counts: an IPv4 address, or the /64 network of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpNet);

impl ClientAddr {
    /// Groups `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> Self {
        Self(match ip.to_canonical() {
            IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
            IpAddr::V6(v6) => {
                IpNet::V6(Ipv6Net::new(v6, 64).expect("64 is a valid prefix").trunc())
            }
        })
    }

    /// The client of `req`, as attached by [`ClientAddress`]; `None` off a TCP socket.
    pub fn of_request(req: &Request) -> Option<Self> {
        req.extensions().get::<ClientAddr>().copied()
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(net) => write!(f, "{}", net.addr()),
            IpNet::V6(net) => write!(f, "{net}"),
        }
    }
}

/// Middleware attaching every request's [`ClientAddr`] to its extensions.
pub struct ClientAddress(Arc<TrustedProxies>);

impl ClientAddress {
    pub fn new(proxies: TrustedProxies) -> Self {
        Self(Arc::new(proxies))
    }
}

impl<E: Endpoint> Middleware<E> for ClientAddress {
    type Output = ClientAddressEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ClientAddressEndpoint {
            inner,
            proxies: self.0.clone(),
        }
    }
}

/// The endpoint produced by [`ClientAddress`].
pub struct ClientAddressEndpoint<E> {
    inner: E,
    proxies: Arc<TrustedProxies>,
}

impl<E: Endpoint> Endpoint for ClientAddressEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) {
            let client = ClientAddr::of(self.proxies.client_ip(peer, req.headers()));
            req.extensions_mut().insert(client);
        }
        self.inner.call(req).await
    }
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            list.iter()
                .map(|s| parse_trusted_proxy(s).unwrap())
                .collect(),
        )
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", "198.51.100.7");
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The shopper sent a forged first entry; the proxies appended what they saw.
        let h = headers("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.1.2.3");
        assert_eq!(p.client_ip(ip("192.0.2.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.2",
        );
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn an_unreadable_hop_leaves_the_last_vouched_one() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.2");
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        let a = ClientAddr::of(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr::of(ip("2001:db8:1:2:ffff::9"));
        let c = ClientAddr::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::of(ip("::ffff:198.51.100.7")).to_string(),
            "198.51.100.7"
        );
    }

    #[test]
    fn a_proxy_entry_may_be_a_bare_address() {
        assert!(parse_trusted_proxy("192.0.2.1").is_ok());
        assert!(parse_trusted_proxy("10.0.0.0/8").is_ok());
        assert!(parse_trusted_proxy("nonsense").is_err());
    }
}
