//! Where webhooks may go: URL rules per mode and the address check against SSRF.
//!
//! Live endpoints must be https and every address their host resolves to must be public
//! (not loopback, private, link-local, carrier-grade NAT, multicast, documentation or
//! unspecified). The check runs when the URL is saved and again at every delivery, and
//! the delivery connects to exactly the addresses that passed, so a DNS answer that changes
//! in between (rebinding) cannot redirect a request inward. Test endpoints may use http and
//! loopback (a developer's own machine), but never other internal ranges.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use superpayment_core::Mode;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// A resolver that does not answer in this time counts as a failed attempt.
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a destination is refused; `code()` is the API's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("The URL is not a valid absolute http(s) URL.")]
    Invalid,
    #[error("Live-mode webhook endpoints must use https.")]
    HttpsRequired,
    #[error("The URL must not contain a user name or password.")]
    Credentials,
    #[error("The URL's host could not be resolved.")]
    Unresolvable,
    #[error("The URL's host resolves to an address that is not allowed (loopback, private or link-local).")]
    AddressNotAllowed,
}

impl DestinationError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid_webhook_url",
            Self::HttpsRequired => "webhook_url_https_required",
            Self::Credentials => "webhook_url_credentials",
            Self::Unresolvable => "webhook_url_unresolvable",
            Self::AddressNotAllowed => "webhook_url_address_not_allowed",
        }
    }
}

/// A URL that passed every check, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Checks the form of a URL for a mode (no DNS).
pub fn parse_url(raw: &str, mode: Mode) -> Result<Url, DestinationError> {
    if raw.len() > MAX_URL_LEN {
        return Err(DestinationError::Invalid);
    }
    let url = Url::parse(raw.trim()).map_err(|_| DestinationError::Invalid)?;
    match (url.scheme(), mode) {
        ("https", _) | ("http", Mode::Test) => {}
        ("http", Mode::Live) => return Err(DestinationError::HttpsRequired),
        _ => return Err(DestinationError::Invalid),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DestinationError::Invalid);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    Ok(url)
}

/// Parses, resolves and checks every address of a destination.
pub async fn resolve(
    raw: &str,
    mode: Mode,
    allow_test_loopback: bool,
) -> Result<Destination, DestinationError> {
    let url = parse_url(raw, mode)?;
    let host = url
        .host_str()
        .ok_or(DestinationError::Invalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or(DestinationError::Invalid)?;
    let lookup = tokio::net::lookup_host((host.as_str(), port));
    let addrs: Vec<SocketAddr> = tokio::time::timeout(DNS_TIMEOUT, lookup)
        .await
        .map_err(|_| DestinationError::Unresolvable)?
        .map_err(|_| DestinationError::Unresolvable)?
        .collect();
    if addrs.is_empty() {
        return Err(DestinationError::Unresolvable);
    }
    let allowed = |ip: IpAddr| match mode {
        Mode::Live => is_public(ip),
        Mode::Test => is_public(ip) || (allow_test_loopback && canonical(ip).is_loopback()),
    };
    if !addrs.iter().all(|a| allowed(a.ip())) {
        return Err(DestinationError::AddressNotAllowed);
    }
    Ok(Destination { url, host, addrs })
}

/// IPv4-mapped and -compatible IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
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
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 can reach IPv4 internals
        || (s[0] == 0x2002) // 6to4 embeds IPv4
        || (s[0] == 0x2001 && s[1] == 0) // Teredo embeds IPv4
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn live_urls_need_https_and_no_credentials() {
        assert_eq!(
            parse_url("http://example.com/hook", Mode::Live).unwrap_err(),
            DestinationError::HttpsRequired
        );
        assert!(parse_url("http://example.com/hook", Mode::Test).is_ok());
        assert_eq!(
            parse_url("https://u:p@example.com/", Mode::Live).unwrap_err(),
            DestinationError::Credentials
        );
        assert_eq!(
            parse_url("ftp://example.com/", Mode::Test).unwrap_err(),
            DestinationError::Invalid
        );
    }

    #[tokio::test]
    async fn loopback_and_private_literals_are_refused_in_live_mode() {
        for url in [
            "https://127.0.0.1/h",
            "https://10.0.0.1/h",
            "https://[::1]/h",
        ] {
            assert_eq!(
                resolve(url, Mode::Live, true).await.unwrap_err(),
                DestinationError::AddressNotAllowed,
                "{url}"
            );
        }
        assert!(resolve("http://127.0.0.1:9/h", Mode::Test, true)
            .await
            .is_ok());
        assert_eq!(
            resolve("http://10.0.0.1/h", Mode::Test, true)
                .await
                .unwrap_err(),
            DestinationError::AddressNotAllowed
        );
    }
}
