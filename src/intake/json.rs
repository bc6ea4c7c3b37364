//! Request bodies parsed as JSON, strictly: an object with a key twice is refused, and so is any
//! `modifierExtension`.
//!
//! RFC 8259 leaves a repeated key to the parser (serde_json keeps the last value, others the first): a
//! submission whose meaning depends on the parser cannot be certified, so every repeated key is reported,
//! located by a FHIRPath-like path (`QuestionnaireResponse.item[3].answer[0].valueString`). A modifier
//! extension changes the meaning of the element that carries it, and FHIR requires a system that does not
//! know it to refuse the resource; this service knows none.
//!
//! The parse goes through serde_json's deserializer (its nesting limit of 128 levels and its syntax checks
//! hold); only the building of the value is ours.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Most findings reported (the rest are counted).
const MAX_FINDINGS: usize = 20;

/// One step from a value to a nested one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Something the strict parse refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The key at the end of the path appears more than once in its object.
    DuplicateKey(Vec<Step>),
    /// A `modifierExtension` element (the path ends with it).
    ModifierExtension(Vec<Step>),
}

/// A parsed body and what it must be refused for.
#[derive(Debug)]
pub struct Parsed {
    pub value: Value,
    /// At most [`MAX_FINDINGS`], in document order.
    pub findings: Vec<Finding>,
    /// Findings beyond those listed.
    pub more: usize,
}

/// Parses `bytes` as one JSON value (nothing but whitespace after it), keeping the first value of a repeated
/// key and reporting every repetition and every `modifierExtension`.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Parsed> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut state = State::default();
    let value = Node {
        state: &mut state,
        path: &mut Vec::new(),
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        value,
        findings: state.findings,
        more: state.more,
    })
}

/// `path` under `root` as FHIRPath: `.name` for keys that are names, `` .`other key` `` (escaped, at most 80
/// characters) for the rest, `[i]` for array positions.
pub fn fhirpath(root: &str, path: &[Step]) -> String {
    let mut out = root.to_owned();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(key) if is_name(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Key(key) => {
                out.push_str(".`");
                for c in key.chars().take(80) {
                    match c {
                        '`' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
                if key.chars().nth(80).is_some() {
                    out.push('…');
                }
                out.push('`');
            }
        }
    }
    out
}

fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 80
}

#[derive(Default)]
struct State {
    findings: Vec<Finding>,
    more: usize,
}

impl State {
    fn found(&mut self, finding: impl FnOnce() -> Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding());
        } else {
            self.more += 1;
        }
    }
}

/// One value being read, at `path`.
struct Node<'a> {
    state: &'a mut State,
    path: &'a mut Vec<Step>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.path.push(Step::Index(out.len()));
            let next = seq.next_element_seed(Node {
                state: &mut *self.state,
                path: &mut *self.path,
            })?;
            self.path.pop();
            match next {
                Some(value) => out.push(value),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.path.push(Step::Key(key));
            if matches!(self.path.last(), Some(Step::Key(k)) if k == "modifierExtension") {
                let path = self.path.clone();
                self.state.found(|| Finding::ModifierExtension(path));
            }
            let value = map.next_value_seed(Node {
                state: &mut *self.state,
                path: &mut *self.path,
            })?;
            let Some(Step::Key(key)) = self.path.last() else {
                unreachable!("the key pushed above");
            };
            if out.contains_key(key) {
                let path = self.path.clone();
                self.state.found(|| Finding::DuplicateKey(path));
                self.path.pop();
            } else if let Some(Step::Key(key)) = self.path.pop() {
                out.insert(key, value);
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_at_any_depth_with_their_path() {
        let parsed = parse(
            br#"{"resourceType":"QuestionnaireResponse","item":[{"linkId":"a"},
                {"linkId":"name","answer":[{"valueString":"A","valueString":"B"}]}],
                "status":"completed","status":"amended"}"#,
        )
        .unwrap();
        let paths: Vec<String> = parsed
            .findings
            .iter()
            .map(|f| match f {
                Finding::DuplicateKey(p) => fhirpath("QuestionnaireResponse", p),
                Finding::ModifierExtension(p) => format!("modifier {p:?}"),
            })
            .collect();
        assert_eq!(
            paths,
            [
                "QuestionnaireResponse.item[1].answer[0].valueString",
                "QuestionnaireResponse.status"
            ]
        );
        // The first value is kept; the rest is read as serde_json reads it.
        assert_eq!(parsed.value["status"], "completed");
        assert_eq!(parsed.value["item"][1]["answer"][0]["valueString"], "A");
        let plain = br#"{"a":[1,-2,3.5,true,null,"x",{"b":{}}],"c":"\u00e9"}"#;
        let ours = parse(plain).unwrap();
        assert!(ours.findings.is_empty());
        assert_eq!(ours.value, serde_json::from_slice::<Value>(plain).unwrap());
    }

    #[test]
    fn modifier_extensions_syntax_and_depth() {
        let parsed = parse(br#"{"item":[{"modifierExtension":[{"url":"x"}]}]}"#).unwrap();
        assert_eq!(
            parsed.findings,
            [Finding::ModifierExtension(vec![
                Step::Key("item".into()),
                Step::Index(0),
                Step::Key("modifierExtension".into())
            ])]
        );
        for bad in [&b"{\"a\":1,}"[..], b"{} x", b"", b"[1"] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(deep.as_bytes()).is_err(), "nesting limit");
        let many = format!(
            "{{{}\"k\":0}}",
            (0..100).map(|_| "\"k\":0,").collect::<String>()
        );
        let parsed = parse(many.as_bytes()).unwrap();
        assert_eq!(parsed.findings.len(), MAX_FINDINGS);
        assert_eq!(parsed.more, 100 - MAX_FINDINGS);
        assert_eq!(
            fhirpath("Bundle", &[Step::Key("a b`".into()), Step::Index(2)]),
            "Bundle.`a b\\``[2]"
        );
    }
}
