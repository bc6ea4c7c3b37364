//! The EU DCC value sets (eu-dcc-valuesets 2.12.0, Apache-2.0), compiled in from
//! `assets/eu-dcc-valuesets/` and parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

/// One EU value set: code → whether it is active. Only active codes may be issued.
#[derive(Debug)]
pub struct ValueSet {
    pub id: &'static str,
    codes: HashMap<String, bool>,
}

impl ValueSet {
    /// Whether `code` is in the value set and active.
    pub fn allows(&self, code: &str) -> bool {
        self.codes.get(code).copied().unwrap_or(false)
    }
}

/// The value sets a vaccination DCC uses.
#[derive(Debug)]
pub struct ValueSets {
    /// `tg`: disease or agent targeted.
    pub disease: ValueSet,
    /// `vp`: vaccine or prophylaxis.
    pub prophylaxis: ValueSet,
    /// `mp`: vaccine medicinal product.
    pub product: ValueSet,
    /// `ma`: marketing authorisation holder or manufacturer.
    pub producer: ValueSet,
    /// `co`: country of vaccination.
    pub country: ValueSet,
}

/// The embedded value sets, parsed on first use.
pub fn value_sets() -> &'static ValueSets {
    static SETS: OnceLock<ValueSets> = OnceLock::new();
    SETS.get_or_init(|| ValueSets {
        disease: parse(
            "disease-agent-targeted",
            include_str!("../../../assets/eu-dcc-valuesets/disease-agent-targeted.json"),
        ),
        prophylaxis: parse(
            "vaccine-prophylaxis",
            include_str!("../../../assets/eu-dcc-valuesets/vaccine-prophylaxis.json"),
        ),
        product: parse(
            "vaccine-medicinal-product",
            include_str!("../../../assets/eu-dcc-valuesets/vaccine-medicinal-product.json"),
        ),
        producer: parse(
            "vaccine-mah-manf",
            include_str!("../../../assets/eu-dcc-valuesets/vaccine-mah-manf.json"),
        ),
        country: parse(
            "country-2-codes",
            include_str!("../../../assets/eu-dcc-valuesets/country-2-codes.json"),
        ),
    })
}

#[derive(serde::Deserialize)]
struct ValueSetFile {
    #[serde(rename = "valueSetValues")]
    values: HashMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    active: bool,
}

/// Parses an embedded file. A broken file is a build defect that the unit tests catch; at run time it
/// degrades to an empty set, so no DCC is issued rather than the process aborting.
fn parse(id: &'static str, json: &str) -> ValueSet {
    let codes = serde_json::from_str::<ValueSetFile>(json)
        .map(|f| f.values.into_iter().map(|(k, e)| (k, e.active)).collect())
        .unwrap_or_else(|e| {
            tracing::error!(value_set = id, error = %e, "embedded EU value set is unreadable");
            HashMap::new()
        });
    ValueSet { id, codes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_embedded_value_sets_parse() {
        let sets = value_sets();
        for (set, at_least) in [
            (&sets.disease, 1),
            (&sets.prophylaxis, 9),
            (&sets.product, 39),
            (&sets.producer, 31),
            (&sets.country, 250),
        ] {
            assert!(set.codes.len() >= at_least, "{}", set.id);
        }
        assert!(sets.disease.allows("840539006"));
        assert!(sets.product.allows("EU/1/20/1528"));
        // Present but inactive: never issued.
        assert!(!sets.prophylaxis.allows("J07BX03"));
        assert!(!sets.product.allows("NVX-CoV2373"));
        assert!(!sets.country.allows("XX"));
    }
}
