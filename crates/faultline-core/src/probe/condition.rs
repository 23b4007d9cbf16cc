//! Probe assertions in Gatus condition syntax: `[STATUS] == 200`,
//! `[BODY].data[0].id == 1`, `[RESPONSE_TIME] < 300`, `len(...)`, `has(...)`,
//! `pat(...)`, `any(...)`, `[CONTEXT].key` — evaluated against a probe result,
//! with Gatus' exact display strings for failed conditions.
//!
//! Semantics follow Gatus' condition, pattern and jsonpath behaviour (checked
//! against its extracted test tables). Not here: running the probe (the
//! server's probe runner does the HTTP call and hands us the result).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a probe observed, as conditions see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeObservation {
    pub status: i64,
    pub body: String,
    pub ip: String,
    pub connected: bool,
    pub response_time_ms: i64,
    pub certificate_expiration_ms: i64,
    pub domain_expiration_ms: i64,
    pub dns_rcode: String,
    /// Values for `[CONTEXT].key` placeholders (multi-step suites).
    pub context: BTreeMap<String, Value>,
}

/// The outcome of one condition: success, the display string, and errors
/// (e.g. an invalid operator or a malformed JSON path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionOutcome {
    pub success: bool,
    pub display: String,
    pub errors: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct DisplayOptions {
    /// Show the condition as written even when it failed.
    pub dont_resolve_failed: bool,
    /// Also show resolved values for conditions that passed.
    pub resolve_successful: bool,
}

const INVALID: &str = "(INVALID)";
const TRUNCATE_AT: usize = 25;

/// Checks a condition's syntax; the error is Gatus' message.
pub fn validate_condition(condition: &str) -> Result<(), String> {
    let out = evaluate_condition(condition, &ProbeObservation::default(), DisplayOptions::default());
    match out.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Evaluates one condition against an observation.
pub fn evaluate_condition(condition: &str, obs: &ProbeObservation, opts: DisplayOptions) -> ConditionOutcome {
    let mut errors = Vec::new();
    let ops = [" == ", " != ", " <= ", " >= ", " > ", " < "];
    let Some(op) = ops.iter().find(|op| condition.contains(**op)) else {
        errors.push(format!("invalid condition: {condition}"));
        return ConditionOutcome { success: false, display: condition.to_owned(), errors };
    };
    let parts: Vec<&str> = condition.split(op).collect();
    let op_s = op.trim();
    let (params, resolved) = resolve(&parts, obs, &mut errors);
    let (success, shown) = match op_s {
        "==" | "!=" => {
            let eq = is_equal(&resolved[0], resolved.get(1).map_or("", String::as_str));
            (if op_s == "==" { eq } else { !eq }, resolved.clone())
        }
        _ => {
            let nums: Vec<i64> = resolved.iter().map(|r| to_number(r)).collect();
            let (a, b) = (nums[0], nums.get(1).copied().unwrap_or(0));
            let ok = match op_s {
                "<=" => a <= b,
                ">=" => a >= b,
                ">" => a > b,
                _ => a < b,
            };
            // A side written as a duration shows as written; expiration
            // placeholders show as durations; anything else as its number.
            let shown = params
                .iter()
                .zip(&resolved)
                .zip(&nums)
                .map(|((p, r), n)| {
                    let up = p.to_ascii_uppercase();
                    if go_parse_duration_ms(r).is_some_and(|ms| ms != 0) {
                        r.clone()
                    } else if up == "[CERTIFICATE_EXPIRATION]" || up == "[DOMAIN_EXPIRATION]" {
                        go_duration(*n)
                    } else {
                        n.to_string()
                    }
                })
                .collect();
            (ok, shown)
        }
    };
    let display =
        if (!success && !opts.dont_resolve_failed) || (success && opts.resolve_successful) { prettify(&params, &shown, op_s) } else { condition.to_owned() };
    ConditionOutcome { success, display, errors }
}

fn is_fn(s: &str, name: &str) -> bool {
    s.starts_with(name) && s.ends_with(')')
}

fn prettify(params: &[String], resolved: &[String], op: &str) -> String {
    let mut resolved = resolved.to_vec();
    if params.len() == 2 && resolved.len() == 2 {
        for (i, j) in [(0, 1), (1, 0)] {
            if (is_fn(&params[i], "pat(") || is_fn(&params[i], "any(")) && resolved[j].len() > TRUNCATE_AT {
                let cut = (0..=TRUNCATE_AT).rev().find(|k| resolved[j].is_char_boundary(*k)).unwrap_or(0);
                resolved[j] = format!("{}...(truncated)", &resolved[j][..cut]);
            }
        }
    }
    let side = |p: &String, r: &String| {
        if r.ends_with(INVALID) {
            r.clone()
        } else if p != r {
            format!("{p} ({r})")
        } else {
            p.clone()
        }
    };
    let shown: Vec<String> = params.iter().zip(&resolved).map(|(p, r)| side(p, r)).collect();
    shown.join(&format!(" {op} "))
}

/// Resolves placeholders; returns (parameters as written, resolved values).
fn resolve(parts: &[&str], obs: &ProbeObservation, errors: &mut Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut params = Vec::new();
    let mut out = Vec::new();
    for raw in parts {
        let element = raw.trim().to_owned();
        params.push(element.clone());
        let resolved = match element.to_ascii_uppercase().as_str() {
            "[STATUS]" => obs.status.to_string(),
            "[IP]" => obs.ip.clone(),
            "[RESPONSE_TIME]" => obs.response_time_ms.to_string(),
            "[BODY]" => obs.body.trim().to_owned(),
            "[CONNECTED]" => obs.connected.to_string(),
            "[CERTIFICATE_EXPIRATION]" => obs.certificate_expiration_ms.to_string(),
            "[DOMAIN_EXPIRATION]" => obs.domain_expiration_ms.to_string(),
            "[DNS_RCODE]" => obs.dns_rcode.clone(),
            _ if element.contains("[CONTEXT]") => resolve_context(&element, obs),
            _ if element.contains("[BODY]") => resolve_body(&element, obs, errors),
            _ => element.clone(),
        };
        out.push(resolved);
    }
    (params, out)
}

fn resolve_context(element: &str, obs: &ProbeObservation) -> String {
    let key = element.trim_start_matches("[CONTEXT]").trim_start_matches('.');
    match obs.context.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => go_fmt(v),
        None => format!("{element} {INVALID}"),
    }
}

fn resolve_body(element: &str, obs: &ProbeObservation, errors: &mut Vec<String>) -> String {
    let (inner, length, existence) = if is_fn(element, "len(") {
        (&element[4..element.len() - 1], true, false)
    } else if is_fn(element, "has(") {
        (&element[4..element.len() - 1], false, true)
    } else {
        (element, false, false)
    };
    let path = inner.trim_start_matches("[BODY]").trim_start_matches('.');
    match json_path_eval(path, obs.body.as_bytes()) {
        Ok((value, len)) => {
            if existence {
                "true".into()
            } else if length {
                len.to_string()
            } else {
                value
            }
        }
        Err(e) => {
            if existence {
                return "false".into();
            }
            if e != "unexpected end of JSON input" {
                errors.push(e);
            }
            if length { format!("len({inner}) {INVALID}") } else { format!("{inner} {INVALID}") }
        }
    }
}

/// Gatus' `==`: `pat()` / `any()` on one side, integers compared by value
/// (hex, octal and binary literals included), otherwise string equality.
fn is_equal(first: &str, second: &str) -> bool {
    let (fp, sp) = (is_fn(first, "pat("), is_fn(second, "pat("));
    if fp && !sp {
        return glob_match(&first[4..first.len() - 1], second);
    }
    if sp && !fp {
        return glob_match(&second[4..second.len() - 1], first);
    }
    let (fa, sa) = (is_fn(first, "any("), is_fn(second, "any("));
    if fa && !sa {
        return first[4..first.len() - 1].split(',').any(|o| o.trim() == second);
    }
    if sa && !fa {
        return second[4..second.len() - 1].split(',').any(|o| o.trim() == first);
    }
    match (go_parse_int(first), go_parse_int(second)) {
        (Some(a), Some(b)) => a == b,
        _ => first == second,
    }
}

/// Numeric value for `< <= > >=`: a Go duration (in ms), an integer, a float
/// (truncated) or 0.
fn to_number(s: &str) -> i64 {
    if let Some(ms) = go_parse_duration_ms(s)
        && ms != 0
    {
        return ms;
    }
    if let Some(i) = go_parse_int(s) {
        return i;
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => f as i64,
        _ => 0,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, `0x`/`0o`/`0b`/leading-`0`
/// prefixes, underscores only after a prefix.
pub fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_owned(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_owned(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.is_empty() || (!prefixed && digits.contains('_')) || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let v = i128::from_str_radix(&clean, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Go's `time.ParseDuration` truncated to milliseconds (None if invalid).
pub fn go_parse_duration_ms(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total_ns += n * unit;
    }
    let ms = (total_ns / 1e6).trunc() as i64;
    Some(if neg { -ms } else { ms })
}

/// A millisecond count shown like Go's `Duration.String()` with trailing
/// zero units dropped (`336h`, `24h`, `1h30m`).
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let (h, m, s, rem) = (ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && (s > 0 || rem > 0)) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || rem > 0 {
        if rem > 0 {
            out.push_str(&format!("{}s", (s as f64 + rem as f64 / 1000.0)));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// Gatus' `pat()`: `*` alone matches everything; otherwise `/` is removed
/// from both sides and a shell glob (`*`, `?`, `[...]`, `\`) must match all.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<char> = pattern.chars().filter(|c| *c != '/').collect();
    let t: Vec<char> = text.chars().filter(|c| *c != '/').collect();
    glob(&p, &t)
}

fn glob(p: &[char], t: &[char]) -> bool {
    // Iterative matcher with single-star backtracking.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(p, pi, t[ti])
                        && matched
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == t[ti] => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns
/// (matched, index after the class) or None if the class is unterminated.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '^' || p[i] == '!');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != ']' || first) {
        first = false;
        let lo = if p[i] == '\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let hi = p[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

/// Gatus' dotted JSON path (`a.b[0].c`, `[3][2]`): the value as text and its
/// length (array: element count). An empty path on a non-array body returns
/// the body itself.
pub fn json_path_eval(path: &str, body: &[u8]) -> Result<(String, usize), String> {
    let trimmed = String::from_utf8_lossy(body);
    let is_array_body = body.first() == Some(&b'[') && body.last() == Some(&b']');
    if path.is_empty() && !is_array_body {
        return Ok((trimmed.clone().into_owned(), body.len()));
    }
    let root: Value = if body.is_empty() {
        return Err("unexpected end of JSON input".into());
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?
    };
    let keys: Vec<&str> = if path.is_empty() { vec![] } else { path.split('.').collect() };
    let mut cur = &root;
    for key in &keys {
        let (name, indexes) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (*key, ""),
        };
        if !name.is_empty() {
            cur = match cur {
                Value::Object(m) => m.get(name).ok_or_else(|| missing(key))?,
                _ => return Err(missing(key)),
            };
        }
        let mut rest = indexes;
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| missing(key))?;
            let idx: i64 = rest[1..close].parse().map_err(|_| missing(key))?;
            cur = match cur {
                Value::Array(a) if idx >= 0 && (idx as usize) < a.len() => &a[idx as usize],
                _ => return Err(missing(key)),
            };
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(missing(key));
            }
        }
    }
    match cur {
        Value::Null => Err(missing(keys.last().copied().unwrap_or(""))),
        Value::String(s) => Ok((s.clone(), s.len())),
        Value::Array(a) => Ok((go_fmt(cur), a.len())),
        Value::Object(_) => {
            // Go marshals maps with sorted keys, minified.
            let s = serde_json::to_string(&sorted(cur)).map_err(|e| e.to_string())?;
            let n = s.len();
            Ok((s, n))
        }
        other => {
            let s = go_fmt(other);
            let n = s.len();
            Ok((s, n))
        }
    }
}

fn missing(key: &str) -> String {
    format!("couldn't walk through '{key}', because it didn't exist")
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::to_value(b).unwrap_or(Value::Null)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Go's `%v` for a decoded JSON value.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e21 { format!("{}", f as i128) } else { format!("{f}") }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let b: BTreeMap<&String, &Value> = m.iter().collect();
            format!("map[{}]", b.iter().map(|(k, v)| format!("{k}:{}", go_fmt(v))).collect::<Vec<_>>().join(" "))
        }
    }
}
