//! Go `time.ParseDuration` syntax, which Istio's jsonpb accepted for `google.protobuf.Duration`.

use std::time::Duration;

/// Parses `"7s"`, `"1.5s"`, `"100ms"`, `"1h2m"`, `"0"`. Returns a message on failure.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("a duration must not be negative".into());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err("a duration must not be empty".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err("expected a number before each unit".into());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("a unit (h, m, s, ms, us, ns) is required".into()),
            other => return Err(format!("unknown unit `{other}`")),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| "number too large".to_string())?
        };
        let mut value = int
            .checked_mul(nanos_per)
            .ok_or_else(|| "duration too large".to_string())?;
        let mut scale = nanos_per;
        for d in frac.bytes().take(18) {
            scale /= 10;
            value = value
                .checked_add(u128::from(d - b'0') * scale)
                .ok_or_else(|| "duration too large".to_string())?;
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= u128::from(u64::MAX))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = tail;
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("7s"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_go_duration("1h2m"), Ok(Duration::from_secs(3720)));
        assert_eq!(parse_go_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_go_duration("7").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("99999999999999999999h").is_err());
        // The integer part fills a u128 of nanoseconds; the fraction would carry past it.
        assert_eq!(
            parse_go_duration("340282366920938463463374607431.769211456s"),
            Err("duration too large".to_string())
        );
        assert_eq!(
            parse_go_duration("18446744073.709551616s"),
            Err("duration too large".to_string())
        );
    }
}
