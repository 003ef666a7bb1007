//! Durations on the command line: `250ms`, `2s`, `1m`, `1h`, and back to that form for `--help`.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Units accepted after the number, longest suffix first so `ms` is not read as `m` + `s`.
const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

/// Parses a whole number followed by a unit (`ms`, `s`, `m`, `h`), e.g. `250ms` or `2s`.
///
/// A bare number is refused rather than guessed: `5` could mean seconds or milliseconds, and a
/// device that pings every 5 ms instead of 5 s drains its battery.
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {text:?} (expected e.g. 250ms, 2s, 1m, 1h)"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: missing unit (ms, s, m or h)"
        ));
    }
    let Some(&(_, millis_per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "invalid duration {text:?}: unknown unit {unit:?} (ms, s, m or h)"
        ));
    };
    let too_long = || format!("invalid duration {text:?}: too long");
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let millis = n.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    Ok(Duration::from_millis(millis))
}

/// Formats `d` with the largest unit that represents it exactly: `20s`, `1m`, `250ms`.
/// Sub-millisecond parts are shown in `ms` with a fraction, which the parser does not accept,
/// but no library default has one.
pub fn format(d: Duration) -> String {
    if d.subsec_nanos() % 1_000_000 != 0 {
        // Integer arithmetic: float formatting would cost the binary several KB of flash.
        let nanos = d.as_nanos();
        let fraction = format!("{:06}", nanos % 1_000_000);
        return format!("{}.{}ms", nanos / 1_000_000, fraction.trim_end_matches('0'));
    }
    let millis = d.as_millis();
    for (name, per) in UNITS.iter().rev() {
        let per = u128::from(*per);
        if millis != 0 && millis % per == 0 {
            return format!("{}{name}", millis / per);
        }
    }
    "0ms".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_bare_numbers_and_garbage() {
        for bad in [
            "", "5", "abc", "s", "-1s", "1.5s", "2 s", "2sec", "1d", "ms1", "2S",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn refuses_overflow_instead_of_wrapping() {
        assert!(parse("99999999999999999999s").is_err());
        assert!(parse("18446744073709551615h").is_err());
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(format(Duration::from_secs(20)), "20s");
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::ZERO), "0ms");
    }

    #[test]
    fn formatted_defaults_parse_back() {
        for d in [1, 250, 5_000, 60_000, 3_600_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
