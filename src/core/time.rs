//! Timestamps for display, without a calendar dependency.

use super::event::Timestamp;

/// `2026-11-25 19:37:46Z` for a Unix timestamp (UTC).
pub fn format_utc(ts: Timestamp) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The longest duration anything in git-mso waits: a week.
pub const MAX_DURATION_SECS: u64 = 7 * 86_400;

/// A positive duration such as `90`, `90s`, `15m` or `2h`, at most a week.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    let secs = n.checked_mul(scale)?;
    (1..=MAX_DURATION_SECS).contains(&secs).then(|| std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::format_utc(1_764_099_466), "2025-11-25 19:37:46Z");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00Z");
    }
}
