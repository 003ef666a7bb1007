//! The resolver configuration: `/etc/resolv.conf` and `/etc/hosts`, parsed the way glibc
//! parses them, so a device resolves the same names the same way as before.
//!
//! Parsing is pure and total: any text gives a usable configuration (glibc never refuses a
//! broken file either; it skips what it cannot read). Only [`SystemConfig::load`] touches files.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// glibc's MAXNS: name servers past the third are ignored.
const MAX_NAMESERVERS: usize = 3;
/// glibc's RES_MAXNDOTS.
const MAX_NDOTS: u8 = 15;
/// glibc's RES_MAXRETRANS, in seconds.
const MAX_TIMEOUT_SECS: u64 = 30;
/// glibc's RES_MAXRETRY.
const MAX_ATTEMPTS: u32 = 5;
/// The DNS port; resolv.conf has no syntax for another.
const DNS_PORT: u16 = 53;

/// What the stub resolver needs from the system: name servers, search list, options, and the
/// static host table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SystemConfig {
    /// At most three servers, in file order; never empty after [`SystemConfig::parse`].
    pub nameservers: Vec<SocketAddr>,
    /// Suffixes tried for names with fewer than `ndots` dots (`search` or `domain`).
    pub search: Vec<String>,
    /// A name with at least this many dots is tried as-is before the search list.
    pub ndots: u8,
    /// How long one try waits for an answer before the next server is asked.
    pub timeout: Duration,
    /// Rounds over all name servers before giving up.
    pub attempts: u32,
    /// Spread lookups over the servers instead of always starting with the first.
    pub rotate: bool,
    /// `/etc/hosts`, parsed once; private so that lookups go through [`Self::hosts_lookup`].
    hosts: Vec<HostsLine>,
}

/// One usable `/etc/hosts` line: an address and its names, lowercased without a trailing dot
/// so that a lookup is a plain comparison.
#[derive(Clone, Debug, PartialEq)]
struct HostsLine {
    /// The address every name on the line maps to.
    address: IpAddr,
    /// The canonical name and its aliases.
    names: Vec<String>,
}

impl Default for SystemConfig {
    /// What glibc uses without a resolv.conf: the local server, no search list, default options.
    fn default() -> SystemConfig {
        SystemConfig {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            hosts: Vec::new(),
        }
    }
}

impl SystemConfig {
    /// Reads `/etc/resolv.conf` and `/etc/hosts`; a missing or unreadable file counts as empty,
    /// as it does for glibc. The only function of the resolver that touches the file system.
    pub fn load() -> SystemConfig {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        parse_with(&read("/etc/resolv.conf"), &read("/etc/hosts"), &|name| {
            // The interface index behind `fe80::1%eth0`, without if_nametoindex(3) (FFI). The
            // name must stay one path component (IFNAMSIZ 16; `eth0.100` is a valid VLAN name).
            let ok = !matches!(name, "" | "." | "..") && name.len() < 16 && !name.contains('/');
            ok.then(|| {
                read(&format!("/sys/class/net/{name}/ifindex"))
                    .trim()
                    .parse()
                    .ok()
            })
            .flatten()
        })
    }

    /// Parses the two files' contents; never fails and never panics, whatever the text.
    ///
    /// glibc's rules: keywords start the line and are followed by a blank; `#` or `;` in the
    /// first column makes a comment; the first three usable `nameserver` lines count (none: the
    /// local server `127.0.0.1:53`, as glibc); the last `search` or `domain` line wins; `options`
    /// takes `ndots:N` (at most 15), `timeout:N` (seconds, at most 30), `attempts:N` (at most 5)
    /// and `rotate`. Deviations, each harmless for a valid file: `#` and `;` also end a line
    /// anywhere (they cannot occur in a host name); `timeout:0` and `attempts:0` mean 1 (glibc
    /// waits at least 1 s, and with 0 attempts would never ask); legacy IPv4 forms such as
    /// `127.1` are skipped; a `%scope` on an IPv6 server must be a number here (an interface
    /// name needs [`Self::load`]), and a server whose scope cannot be resolved is skipped
    /// rather than kept unusable. Not read: `sortlist`, the `LOCALDOMAIN` and `RES_OPTIONS`
    /// variables, and the domain of the host name when there is no search list.
    #[cfg(test)]
    pub fn parse(resolv_conf: &str, hosts: &str) -> SystemConfig {
        parse_with(resolv_conf, hosts, &|_| None)
    }

    /// The addresses `/etc/hosts` gives `name`, in file order (duplicates kept, as glibc),
    /// matching canonical names and aliases case-insensitively with any trailing dot ignored.
    pub fn hosts_lookup(&self, name: &str) -> Vec<IpAddr> {
        let wanted = normalize(name);
        if wanted.is_empty() {
            return Vec::new();
        }
        self.hosts
            .iter()
            .filter(|line| line.names.contains(&wanted))
            .map(|line| line.address)
            .collect()
    }
}

/// [`SystemConfig::parse`] with a way to turn an interface name into its index.
fn parse_with(
    resolv_conf: &str,
    hosts: &str,
    ifindex: &dyn Fn(&str) -> Option<u32>,
) -> SystemConfig {
    let mut config = SystemConfig::default();
    for line in resolv_conf.lines() {
        // Also covers glibc's comment lines (`#` or `;` in the first column).
        let line = strip_comment(line);
        let Some((keyword, rest)) = line.split_once([' ', '\t']) else {
            continue; // glibc requires a blank after the keyword
        };
        let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
        match keyword {
            "nameserver" if config.nameservers.len() < MAX_NAMESERVERS => {
                if let Some(server) = words.next().and_then(|w| nameserver(w, ifindex)) {
                    config.nameservers.push(server);
                }
            }
            // `domain` is a one-entry search list; whichever line comes last wins.
            "domain" => {
                if let Some(domain) = words.next() {
                    config.search = search_entries([domain].into_iter());
                }
            }
            "search" => {
                let list = search_entries(words);
                // glibc ignores a `search` line with nothing after it.
                if !rest.trim_matches([' ', '\t']).is_empty() {
                    config.search = list;
                }
            }
            "options" => words.for_each(|option| apply_option(&mut config, option)),
            _ => {}
        }
    }
    if config.nameservers.is_empty() {
        config
            .nameservers
            .push(SocketAddr::from((Ipv4Addr::LOCALHOST, DNS_PORT)));
    }
    config.hosts = hosts.lines().filter_map(hosts_line).collect();
    config
}

/// The text before a `#` or `;` comment.
fn strip_comment(line: &str) -> &str {
    line.split(['#', ';']).next().unwrap_or_default()
}

/// One `nameserver` address: IPv4, or IPv6 with an optional `%scope` (a number, or an
/// interface name that `ifindex` knows).
fn nameserver(word: &str, ifindex: &dyn Fn(&str) -> Option<u32>) -> Option<SocketAddr> {
    if let Ok(v4) = word.parse::<Ipv4Addr>() {
        return Some(SocketAddr::from((v4, DNS_PORT)));
    }
    let (address, scope) = match word.split_once('%') {
        Some((address, scope)) => (address, Some(scope)),
        None => (word, None),
    };
    let v6 = address.parse::<Ipv6Addr>().ok()?;
    let scope_id = match scope {
        None => 0,
        Some(scope) => scope.parse::<u32>().ok().or_else(|| ifindex(scope))?,
    };
    Some(SocketAddr::V6(SocketAddrV6::new(v6, DNS_PORT, 0, scope_id)))
}

/// Search suffixes without trailing dots; the root (`.`) is dropped, since the name as-is is
/// always tried anyway.
fn search_entries<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    words
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Applies one word of an `options` line; unknown options are ignored, as glibc does. Like
/// glibc, options match by prefix and numbers are read like atoi(3): leading digits, else 0.
fn apply_option(config: &mut SystemConfig, option: &str) {
    if let Some(value) = option.strip_prefix("ndots:") {
        config.ndots = atoi(value).min(u64::from(MAX_NDOTS)) as u8;
    } else if let Some(value) = option.strip_prefix("timeout:") {
        config.timeout = Duration::from_secs(atoi(value).clamp(1, MAX_TIMEOUT_SECS));
    } else if let Some(value) = option.strip_prefix("attempts:") {
        config.attempts = atoi(value).clamp(1, u64::from(MAX_ATTEMPTS)) as u32;
    } else if option.starts_with("rotate") {
        config.rotate = true;
    }
}

/// The leading decimal digits of `text`, saturating; 0 when there are none (a sign included:
/// a negative count makes no sense here, and glibc's result for one is an accident).
fn atoi(text: &str) -> u64 {
    text.bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// One `/etc/hosts` line: `address name [aliases...] [# comment]`; None when it has no usable
/// address or no name. Scoped IPv6 addresses are skipped: an [`IpAddr`] cannot carry a scope.
fn hosts_line(line: &str) -> Option<HostsLine> {
    let line = line.split('#').next().unwrap_or_default();
    let mut words = line.split_ascii_whitespace();
    let address = words.next()?.parse::<IpAddr>().ok()?;
    let names: Vec<String> = words.map(normalize).filter(|n| !n.is_empty()).collect();
    (!names.is_empty()).then_some(HostsLine { address, names })
}

/// A name as compared in `/etc/hosts`: lowercase, without a trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(a), 53))
    }

    #[test]
    fn empty_files_give_glibc_defaults_and_the_local_server() {
        let c = SystemConfig::parse("", "");
        assert_eq!(c.nameservers, vec![v4([127, 0, 0, 1])]);
        assert!(c.search.is_empty());
        assert_eq!(
            (c.ndots, c.timeout, c.attempts, c.rotate),
            (1, Duration::from_secs(5), 2, false)
        );
        assert!(c.hosts_lookup("localhost").is_empty());
    }

    #[test]
    fn nameservers_ipv4_and_ipv6_in_file_order_at_most_three() {
        let c = SystemConfig::parse(
            "nameserver 192.0.2.1\nnameserver\t2001:db8::53 # primary v6\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n",
            "",
        );
        assert_eq!(
            c.nameservers,
            vec![
                v4([192, 0, 2, 1]),
                "[2001:db8::53]:53".parse().unwrap(),
                v4([192, 0, 2, 2])
            ]
        );
    }

    #[test]
    fn unusable_nameserver_lines_are_skipped_and_do_not_take_a_slot() {
        let c = SystemConfig::parse(
            "nameserver example.com\nnameserver 300.1.1.1\nnameserver\nnameserver 127.1\n\
             nameserver fe80::1%eth0\nnameserver 192.0.2.9\n",
            "",
        );
        assert_eq!(c.nameservers, vec![v4([192, 0, 2, 9])]);
    }

    #[test]
    fn ipv6_scope_ids_numeric_here_and_interface_names_through_the_lookup() {
        let c = SystemConfig::parse("nameserver fe80::1%3\n", "");
        let SocketAddr::V6(s) = c.nameservers[0] else {
            panic!("not v6")
        };
        assert_eq!((s.scope_id(), s.port()), (3, 53));
        let c = parse_with("nameserver fe80::1%eth0\n", "", &|n| {
            (n == "eth0").then_some(7)
        });
        let SocketAddr::V6(s) = c.nameservers[0] else {
            panic!("not v6")
        };
        assert_eq!(s.scope_id(), 7);
    }

    #[test]
    fn comments_garbage_and_indented_keywords_are_ignored_like_glibc() {
        let c = SystemConfig::parse(
            "# nameserver 192.0.2.1\n; nameserver 192.0.2.2\n  nameserver 192.0.2.3\n\
             nameserver192.0.2.4\n\u{0}\u{fffd}garbage \x7f\n\noptions\nsearch\n\
             nameserver 192.0.2.5;comment\n",
            "",
        );
        assert_eq!(c.nameservers, vec![v4([192, 0, 2, 5])]);
        assert!(c.search.is_empty());
    }

    #[test]
    fn the_last_search_or_domain_line_wins() {
        let c = SystemConfig::parse("search a.example b.example.\ndomain c.example\n", "");
        assert_eq!(c.search, vec!["c.example"]);
        let c = SystemConfig::parse(
            "domain c.example extra\nsearch a.example\tb.example .\n",
            "",
        );
        assert_eq!(c.search, vec!["a.example", "b.example"]);
        let c = SystemConfig::parse("search a.example\nsearch   \n", "");
        assert_eq!(c.search, vec!["a.example"]);
    }

    #[test]
    fn options_are_read_and_capped_at_glibc_limits() {
        let c = SystemConfig::parse("options ndots:3 timeout:2 attempts:4 rotate\n", "");
        assert_eq!(
            (c.ndots, c.timeout, c.attempts, c.rotate),
            (3, Duration::from_secs(2), 4, true)
        );
        let c = SystemConfig::parse(
            "options ndots:99 timeout:600 attempts:99999999999999999999\n",
            "",
        );
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (15, Duration::from_secs(30), 5)
        );
        let c = SystemConfig::parse(
            "options timeout:0 attempts:0 ndots:0\noptions edns0 bogus:1\n",
            "",
        );
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (0, Duration::from_secs(1), 1)
        );
        let c = SystemConfig::parse("options ndots:2x timeout:x attempts:-3\n", "");
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (2, Duration::from_secs(1), 1)
        );
    }

    #[test]
    fn hosts_lookup_is_case_insensitive_ignores_trailing_dots_and_counts_aliases() {
        let hosts = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # loopback\n\
                     # 192.0.2.1 gateway\n192.0.2.7 Gateway.Example. gw\nnot-an-ip gw\n\
                     192.0.2.8\nfe80::1%eth0 gw\n192.0.2.9 other gw # last\n";
        let c = SystemConfig::parse("", hosts);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            c.hosts_lookup("LOCALHOST."),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert_eq!(c.hosts_lookup("gateway.example"), vec![ip("192.0.2.7")]);
        assert_eq!(c.hosts_lookup("gw"), vec![ip("192.0.2.7"), ip("192.0.2.9")]);
        assert!(c.hosts_lookup("loopback").is_empty());
        assert!(c.hosts_lookup("").is_empty());
        assert!(c.hosts_lookup(".").is_empty());
    }

    #[test]
    fn load_reads_the_system_files_without_failing() {
        // Whatever this machine has: never empty servers, never a panic.
        assert!(!SystemConfig::load().nameservers.is_empty());
    }
}
