//! Alertmanager-compatible label matchers: `name="v"`, `name!="v"`,
//! `name=~"re"`, `name!~"re"`, with fully anchored RE2-syntax regexes and the
//! rule that a missing label has the empty value.
//!
//! What it is: parsing (the config string form and the `/api/v2` object form
//! `{name, value, isRegex, isEqual}`) and matching. What it is not: route
//! selection (see `routing`), silences (see `silence`).

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// An alert's or incident's labels.
pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid matcher {input:?}: {reason}")]
    Syntax { input: String, reason: &'static str },
    #[error("invalid regex in matcher {name}: {reason}")]
    Regex { name: String, reason: String },
}

/// Longest accepted regex source, in bytes.
const MAX_REGEX_LEN: usize = 4096;

/// One label matcher. Serializes as its config string, e.g. `team=~"db|cache"`.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}
impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(MatcherError::Syntax { input: name.chars().take(64).collect(), reason: "label name must match [a-zA-Z_][a-zA-Z0-9_]*" });
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                if value.len() > MAX_REGEX_LEN {
                    return Err(MatcherError::Regex { name: name.into(), reason: "longer than 4096 bytes".into() });
                }
                let re = regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| MatcherError::Regex { name: name.into(), reason: e.to_string() })?;
                Some(re)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher { name: name.to_owned(), op, value: value.to_owned(), re })
    }

    /// Parses `name<op>value`, where value is a double-quoted string (with `\"`,
    /// `\\`, `\n` escapes) or a bare word. Surrounding spaces are allowed.
    pub fn parse(input: &str) -> Result<Matcher, MatcherError> {
        let err = |reason| MatcherError::Syntax { input: input.chars().take(128).collect(), reason };
        let s = input.trim();
        let name_end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).ok_or_else(|| err("missing operator"))?;
        let (name, rest) = s.split_at(name_end);
        let rest = rest.trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Equal, r)
        } else {
            return Err(err("expected one of =, !=, =~, !~"));
        };
        let rest = rest.trim();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(c @ ('"' | '\\')) => out.push(c),
                        // Keep unknown escapes verbatim so regexes like \d survive.
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err(err("unterminated escape")),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(err("unterminated quoted value"));
            }
            if !chars.as_str().trim().is_empty() {
                return Err(err("text after the quoted value"));
            }
            out
        } else {
            if rest.contains(['"', ',', '{', '}']) {
                return Err(err("unquoted value contains a quote, comma or brace"));
            }
            rest.to_owned()
        };
        Matcher::new(name, op, &value)
    }

    /// Parses a list of matchers in `{a="b", c=~"d"}` form (braces optional).
    pub fn parse_set(input: &str) -> Result<Vec<Matcher>, MatcherError> {
        let s = input.trim();
        let s = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s);
        split_top_level(s).into_iter().filter(|p| !p.trim().is_empty()).map(|p| Matcher::parse(&p)).collect()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match (&self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // Invariant: `new` always compiles a regex for the regex ops.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// The Alertmanager API object form.
    pub fn to_api(&self) -> ApiMatcher {
        ApiMatcher {
            name: self.name.clone(),
            value: self.value.clone(),
            is_regex: matches!(self.op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(self.op, MatchOp::Equal | MatchOp::Regex),
        }
    }
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && in_quotes {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == ',' && !in_quotes {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Matcher, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Alertmanager `/api/v2` matcher object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    /// Absent in older clients; defaults to true (an equality matcher).
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl ApiMatcher {
    pub fn compile(&self) -> Result<Matcher, MatcherError> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(&self.name, op, &self.value)
    }
}
