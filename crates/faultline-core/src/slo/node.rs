//! A path-tracking view over a parsed YAML document, so every validation error
//! names the field it is about (`spec.objectives[0].op`).
//!
//! Spec loaders parse YAML with serde-saphyr into a `serde_json::Value` tree
//! and then walk it with `Node`, collecting every problem instead of stopping
//! at the first. Not here: any knowledge of a particular spec format.

use std::fmt;

use serde_json::Value;

/// One validation problem: which document, which field, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpecError {
    /// 0-based index of the object in the file (documents and list items).
    pub document: usize,
    /// Dotted path of the offending field, e.g. `spec.objectives[0].op`;
    /// empty when the whole document is at fault (e.g. YAML syntax).
    pub field: String,
    pub problem: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "object {}: {}", self.document, self.problem)
        } else {
            write!(f, "object {}: '{}': {}", self.document, self.field, self.problem)
        }
    }
}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid SLO spec:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl SpecErrors {
    pub fn single(document: usize, field: &str, problem: impl Into<String>) -> SpecErrors {
        SpecErrors(vec![SpecError { document, field: field.to_owned(), problem: problem.into() }])
    }
    /// Whether some error names exactly this field.
    pub fn names_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

/// Parses a YAML stream (one or more `---` documents) into values. A document
/// that is a sequence is flattened into its items (the `oslo` convention).
pub fn parse_yaml_objects(text: &str) -> Result<Vec<Value>, SpecErrors> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| SpecErrors::single(0, "", format!("YAML syntax: {e}")))?;
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A value plus where it is. Errors are pushed to a shared sink.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: &'a str,
}

/// Collects errors for one document.
pub struct Sink {
    pub document: usize,
    pub errors: Vec<SpecError>,
}

impl Sink {
    pub fn new(document: usize) -> Sink {
        Sink { document, errors: Vec::new() }
    }
    pub fn push(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(SpecError { document: self.document, field: field.to_owned(), problem: problem.into() });
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Node<'a> {
        Node { value, path: "" }
    }
    pub fn at(value: &'a Value, path: &'a str) -> Node<'a> {
        Node { value, path }
    }
    pub fn path(&self) -> &'a str {
        self.path
    }
    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }
    /// The child value, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.as_object().and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// Reports keys outside `allowed` (unknown fields are errors, as in `oslo`).
    pub fn deny_unknown(&self, allowed: &[&str], sink: &mut Sink) {
        match self.value.as_object() {
            Some(m) => {
                for k in m.keys() {
                    if !allowed.contains(&k.as_str()) {
                        sink.push(&join(self.path, k), "unknown field");
                    }
                }
            }
            None => sink.push(self.path, format!("expected a mapping, found {}", kind(self.value))),
        }
    }
    pub fn opt_str(&self, key: &str, sink: &mut Sink) -> Option<String> {
        let v = self.get(key)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                sink.push(&join(self.path, key), format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }
    pub fn req_str(&self, key: &str, sink: &mut Sink) -> Option<String> {
        match self.opt_str(key, sink) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                sink.push(&join(self.path, key), "property is required but was empty");
                None
            }
            None => {
                if !self.has(key) {
                    sink.push(&join(self.path, key), "property is required but was empty");
                }
                None
            }
        }
    }
    pub fn opt_f64(&self, key: &str, sink: &mut Sink) -> Option<f64> {
        let v = self.get(key)?;
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    sink.push(&join(self.path, key), format!("expected a number, found {s:?}"));
                    None
                }
            },
            other => {
                sink.push(&join(self.path, key), format!("expected a number, found {}", kind(other)));
                None
            }
        }
    }
    pub fn opt_bool(&self, key: &str, sink: &mut Sink) -> Option<bool> {
        let v = self.get(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                sink.push(&join(self.path, key), format!("expected true or false, found {}", kind(other)));
                None
            }
        }
    }
    /// Child mapping, reporting a type error if it is something else.
    pub fn opt_map(&self, key: &str, sink: &mut Sink) -> Option<&'a Value> {
        let v = self.get(key)?;
        if v.is_object() {
            Some(v)
        } else {
            sink.push(&join(self.path, key), format!("expected a mapping, found {}", kind(v)));
            None
        }
    }
    pub fn opt_seq(&self, key: &str, sink: &mut Sink) -> Option<&'a Vec<Value>> {
        let v = self.get(key)?;
        match v {
            Value::Array(a) => Some(a),
            other => {
                sink.push(&join(self.path, key), format!("expected a list, found {}", kind(other)));
                None
            }
        }
    }
    /// A string → string mapping (labels, annotations).
    pub fn opt_string_map(&self, key: &str, sink: &mut Sink) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(m) = self.opt_map(key, sink).and_then(|v| v.as_object()) {
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    Value::Number(n) => {
                        out.insert(k.clone(), n.to_string());
                    }
                    Value::Bool(b) => {
                        out.insert(k.clone(), b.to_string());
                    }
                    other => sink.push(&join(&join(self.path, key), k), format!("expected a string, found {}", kind(other))),
                }
            }
        }
        out
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
