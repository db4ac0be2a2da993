//! Times on postfachctl's command line and in its tables.
//!
//! The daemon speaks Unix seconds (`date x`, `since x`, `until x`); people
//! speak dates. Input accepts RFC 3339 (what `date --rfc-3339=seconds`
//! prints, with `T` or a space), a bare date (midnight in the local time
//! zone: "mail since Monday" means the admin's Monday) or Unix seconds for
//! scripts. Tables show the local time to the minute.

use chrono::{DateTime, Local, NaiveDate, TimeZone};

/// `--since`/`--until` value to Unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty()
        && s.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return s.parse().map_err(|e| format!("{s:?}: {e}"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return midnight(&Local, date)
            .ok_or_else(|| format!("{s}: midnight does not exist in the local time zone"));
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2026-11-27T10:00:00+01:00), a date (2026-11-27) or Unix seconds"
    ))
}

/// The first instant of `date` in `tz` (the earliest, should a DST change
/// make midnight ambiguous).
fn midnight<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> Option<i64> {
    let naive = date.and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in the local time zone.
pub fn local_minutes(secs: i64) -> String {
    minutes_in(&Local, secs)
}

fn minutes_in<Tz: TimeZone>(tz: &Tz, secs: i64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match tz.timestamp_opt(secs, 0).earliest() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    #[test]
    fn unix_seconds_and_rfc3339() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("-5"), Ok(-5));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14 23:13:20+01:00"), Ok(1_700_000_000));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time("2023-13-01").is_err());
        // A bare date is some local midnight within a day of UTC midnight.
        let t = parse_time("2023-11-14").unwrap();
        assert!((t - 1_699_920_000).abs() <= 14 * 3600, "{t}");
    }

    #[test]
    fn midnight_in_a_zone() {
        let d = NaiveDate::from_ymd_opt(2023, 11, 14).unwrap();
        assert_eq!(midnight(&Utc, d), Some(1_699_920_000));
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(midnight(&cet, d), Some(1_699_920_000 - 3600));
    }

    #[test]
    fn minutes_in_a_zone() {
        assert_eq!(minutes_in(&Utc, 1_700_000_000), "2023-11-14 22:13");
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(minutes_in(&cet, 1_700_000_000), "2023-11-14 23:13");
    }
}
