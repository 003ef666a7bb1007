//! The search list: which names a lookup asks for, and in which order.
#![forbid(unsafe_code)]

use super::conf::SystemConfig;
use super::wire;

/// The names to ask for, glibc's res_search order: a name ending in `.` is only itself; one
/// with at least `ndots` dots is tried as-is first, then with each search suffix; a shorter
/// one with the suffixes first, then as-is. Names that cannot be encoded are left out.
pub(crate) fn candidates(name: &str, config: &SystemConfig) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    if let Some(absolute) = name.strip_suffix('.') {
        list.push(absolute.to_owned());
    } else {
        let suffixed = config
            .search
            .iter()
            .map(|suffix| format!("{name}.{suffix}"));
        if name.matches('.').count() >= usize::from(config.ndots) {
            list.push(name.to_owned());
            list.extend(suffixed);
        } else {
            list.extend(suffixed);
            list.push(name.to_owned());
        }
    }
    let mut seen: Vec<String> = Vec::new();
    list.retain(|candidate| {
        let key = candidate.to_ascii_lowercase();
        let fresh = wire::is_queryable(candidate) && !seen.contains(&key);
        seen.push(key);
        fresh
    });
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(name: &str, resolv_conf: &str) -> Vec<String> {
        candidates(name, &SystemConfig::parse(resolv_conf, ""))
    }

    #[test]
    fn ndots_zero_tries_every_name_as_is_first() {
        let want = ["api", "api.a.example"];
        assert_eq!(tried("api", "search a.example\noptions ndots:0\n"), want);
    }

    #[test]
    fn repeated_and_unaskable_candidates_are_left_out() {
        let conf = "search a.example A.example. b..example\n";
        assert_eq!(tried("api", conf), ["api.a.example", "api"]);
        assert!(tried("", conf).is_empty());
        assert!(tried(".", conf).is_empty());
        let long = [(); 4].map(|_| "x".repeat(61)).join("."); // 247 bytes: no room for ".a.example"
        assert_eq!(tried(&long, conf), vec![long], "past 253 bytes");
    }
}
