//! Test support: checks a resource against the snapshot of its IG 1.0.0 profile, read from the published
//! FHIR package (`shared/vectors/ddcc/ig-1.0.0/who.ddcc-1.0.0-package.tgz`).
//!
//! Not a validator: it checks what our builder can get wrong, for every element of the snapshot:
//! - minimum cardinality (on every occurrence of the parent, so optional parents that are absent are fine);
//! - maximum cardinality of non-sliced elements;
//! - `pattern[x]` / `fixed[x]` values of non-sliced elements;
//! - extension slices by url (min and max).
//!
//! Children of other slices are checked on every occurrence of the base element, which is stricter than the
//! profile; the slices themselves (which entry, which content slot) are checked by the unit tests by name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// The StructureDefinitions of the package, by canonical url.
pub(super) fn profiles() -> BTreeMap<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors/ddcc/ig-1.0.0/who.ddcc-1.0.0-package.tgz");
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip package");
    let mut out = BTreeMap::new();
    // ustar: 512-byte header (name at 0..100, octal size at 124..136), then the data padded to 512 bytes.
    let mut at = 0;
    while let Some(header) = tar.get(at..at + 512) {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let raw = &header[r];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).trim().to_owned()
        };
        let name = field(0..100);
        let size = usize::from_str_radix(&field(124..136), 8).expect("tar size");
        let data = &tar[at + 512..at + 512 + size];
        if name.starts_with("package/StructureDefinition-") && name.ends_with(".json") {
            let sd: Value = serde_json::from_slice(data).expect("StructureDefinition JSON");
            let url = sd["url"].as_str().expect("url").to_owned();
            out.insert(url, sd);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// Every problem found in `resource` against the profile `sd`, as readable strings (empty: conforms).
pub(super) fn check(resource: &Value, sd: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let elements = sd["snapshot"]["element"].as_array().expect("snapshot");
    for e in elements {
        let id = e["id"].as_str().expect("element id");
        let Some((_root, rest)) = id.split_once('.') else {
            continue;
        };
        let segments: Vec<&str> = rest.split('.').collect();
        let Some((last, parents)) = segments.split_last() else {
            continue;
        };
        let min = e["min"].as_u64().unwrap_or(0) as usize;
        let max = e["max"].as_str().unwrap_or("*");
        let parent_nodes = nodes(resource, parents);
        let (name, slice) = match last.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (*last, None),
        };
        let sliced = slice.is_some() || parents.iter().any(|p| p.contains(':'));

        for parent in &parent_nodes {
            let mut children = children(parent, name);
            if let (Some(_), "extension") = (slice, name) {
                let Some(url) = e["type"][0]["profile"][0].as_str() else {
                    continue;
                };
                children.retain(|c| c["url"] == url);
            } else if slice.is_some() {
                // Non-extension slices are matched by discriminators this checker does not evaluate.
                continue;
            }
            let present = children.len() + usize::from(parent.get(format!("_{name}")).is_some());
            if present < min {
                problems.push(format!("{id}: {present} present, min {min}"));
            }
            if let Ok(max) = max.parse::<usize>() {
                if (!sliced || name == "extension") && children.len() > max {
                    problems.push(format!("{id}: {} present, max {max}", children.len()));
                }
            }
            if sliced {
                continue;
            }
            let pattern = e.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.starts_with("pattern") || k.starts_with("fixed"))
            });
            if let Some((_, pattern)) = pattern {
                for child in &children {
                    if !matches(child, pattern) {
                        problems.push(format!("{id}: {child} does not match {pattern}"));
                    }
                }
            }
        }
    }
    problems
}

/// The nodes at `path` below `root`; arrays are flattened, `[x]` matches any choice type.
fn nodes<'a>(root: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    path.iter().fold(vec![root], |acc, seg| {
        let name = seg.split_once(':').map_or(*seg, |(n, _)| n);
        acc.iter().flat_map(|n| children(n, name)).collect()
    })
}

fn children<'a>(node: &'a Value, name: &str) -> Vec<&'a Value> {
    let Some(obj) = node.as_object() else {
        return Vec::new();
    };
    let values: Vec<&Value> = match name.strip_suffix("[x]") {
        Some(prefix) => obj
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(prefix)
                    .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
            })
            .map(|(_, v)| v)
            .collect(),
        None => obj.get(name).into_iter().collect(),
    };
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        })
        .collect()
}

/// FHIR pattern semantics: every element of the pattern is in the instance (arrays: each pattern item
/// matches some instance item).
fn matches(instance: &Value, pattern: &Value) -> bool {
    match (instance, pattern) {
        (Value::Object(i), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| i.get(k).is_some_and(|iv| matches(iv, pv))),
        (Value::Array(i), Value::Array(p)) => p.iter().all(|pv| i.iter().any(|iv| matches(iv, pv))),
        (i, p) => i == p,
    }
}
