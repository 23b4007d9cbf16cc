//! Prometheus-style duration strings (`5m`, `1h30m`, `3d12h`, `2m0s`, `4w`):
//! parsing to `Duration` and canonical formatting.
//!
//! Not here: calendar units (`M`, `Q`, `Y` of OpenSLO time windows); those
//! belong to `openslo`, which maps them to approximate fixed lengths.

use crate::time::Duration;

/// Parses a sequence of `<integer><unit>` terms, units `y w d h m s ms`
/// (a year is 365 days, as in Prometheus). Rejects empty input, unknown units,
/// signs and overflow.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("invalid duration {s:?}: expected a number at position {start}"));
        }
        let n: i64 = s[start..i].parse().map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: i64 = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            "" => return Err(format!("invalid duration {s:?}: missing unit")),
            u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
        };
        let term = n.checked_mul(unit_ms).ok_or_else(|| format!("invalid duration {s:?}: overflow"))?;
        total = total.checked_add(term).ok_or_else(|| format!("invalid duration {s:?}: overflow"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats largest units first with zero terms omitted (`1h30m`, `3d12h`,
/// `2w`, `0s`). Weeks are used only for whole weeks, so 30 days prints as
/// `30d` rather than Prometheus' `4w2d`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    let week = 7 * 86_400_000i64;
    let use_weeks = ms % week == 0 && ms % (365 * 86_400_000) != 0;
    for (unit, len) in [
        ("y", 365 * 86_400_000i64),
        ("w", if use_weeks { week } else { i64::MAX }),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = ms / len;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            ms -= n * len;
        }
    }
    out
}
