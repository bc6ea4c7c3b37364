//! Small value types whose constructors are the validation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A string with at least one non-whitespace character, trimmed of surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NonEmpty(#[serde(deserialize_with = "non_empty")] String);

/// Read back (a kept event) through the same check as input.
fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    NonEmpty::parse(&s)
        .map(|n| n.0)
        .ok_or_else(|| serde::de::Error::custom("an empty string"))
}

impl NonEmpty {
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        (!t.is_empty()).then(|| NonEmpty(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NonEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An integer ≥ 1 (FHIR positiveInt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PositiveInt(#[serde(deserialize_with = "positive")] u32);

fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    PositiveInt::new(i64::deserialize(d)?)
        .map(PositiveInt::get)
        .ok_or_else(|| serde::de::Error::custom("not a positiveInt"))
}

impl PositiveInt {
    /// FHIR positiveInt: 1 ..= 2^31 - 1.
    pub fn new(n: i64) -> Option<Self> {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            return None;
        }
        u32::try_from(n).ok().map(PositiveInt)
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, each part a real calendar value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FhirDate {
    Year(i32),
    YearMonth(i32, u8),
    Full(time::Date),
}

impl FhirDate {
    /// Parses the FHIR `date` lexical form; `None` for anything else (including 2021-02-30).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b.get(r.clone())
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|_| &s[r])
        };
        let year: i32 = digits(0..4)?.parse().ok()?;
        if year < 1 {
            return None;
        }
        match b.len() {
            4 => Some(FhirDate::Year(year)),
            7 if b[4] == b'-' => {
                let month: u8 = digits(5..7)?.parse().ok()?;
                (1..=12)
                    .contains(&month)
                    .then_some(FhirDate::YearMonth(year, month))
            }
            10 if b[4] == b'-' && b[7] == b'-' => {
                let month: u8 = digits(5..7)?.parse().ok()?;
                let day: u8 = digits(8..10)?.parse().ok()?;
                let month = time::Month::try_from(month).ok()?;
                time::Date::from_calendar_date(year, month, day)
                    .ok()
                    .map(FhirDate::Full)
            }
            _ => None,
        }
    }

    /// The full date, when day precision is known.
    pub fn full(self) -> Option<time::Date> {
        match self {
            FhirDate::Full(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for FhirDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FhirDate::Year(y) => write!(f, "{y:04}"),
            FhirDate::YearMonth(y, m) => write!(f, "{y:04}-{m:02}"),
            FhirDate::Full(d) => write!(
                f,
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
        }
    }
}

impl Serialize for FhirDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FhirDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FhirDate::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a FHIR date: {s:?}")))
    }
}

/// Administrative gender (linkId `sex`, value set administrative-gender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

impl Sex {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "male" => Some(Sex::Male),
            "female" => Some(Sex::Female),
            "other" => Some(Sex::Other),
            "unknown" => Some(Sex::Unknown),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// An ISO 3166-1 alpha-3 country code that exists (e.g. `USA`), with its alpha-2 twin for the EU DCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country {
    alpha3: &'static str,
    alpha2: &'static str,
}

impl Country {
    /// Looks the code up in the ISO 3166-1 table; `None` when it is not an assigned alpha-3 code.
    pub fn from_alpha3(code: &str) -> Option<Self> {
        crate::codes::iso3166::lookup_alpha3(code)
            .map(|(alpha3, alpha2)| Country { alpha3, alpha2 })
    }
    pub fn alpha3(self) -> &'static str {
        self.alpha3
    }
    pub fn alpha2(self) -> &'static str {
        self.alpha2
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.alpha3)
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Country::from_alpha3(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("not an ISO 3166-1 alpha-3 code: {s:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_real_calendar_dates() {
        assert_eq!(
            FhirDate::parse("2021-04-05").unwrap().to_string(),
            "2021-04-05"
        );
        assert_eq!(FhirDate::parse("2021-04").unwrap().to_string(), "2021-04");
        assert_eq!(FhirDate::parse("2021").unwrap().to_string(), "2021");
        for bad in [
            "2021-02-30",
            "2021-13-01",
            "2021-4-05",
            "21-04-05",
            "2021-04-05T10:00:00Z",
            "",
            "abcd",
            "0000",
        ] {
            assert!(FhirDate::parse(bad).is_none(), "{bad} accepted");
        }
        assert!(FhirDate::parse("2024-02-29").is_some());
        assert!(FhirDate::parse("2023-02-29").is_none());
    }

    #[test]
    fn positive_int_rejects_zero_and_negatives() {
        assert!(PositiveInt::new(0).is_none());
        assert!(PositiveInt::new(-1).is_none());
        assert_eq!(PositiveInt::new(3).unwrap().get(), 3);
    }

    #[test]
    fn non_empty_trims() {
        assert!(NonEmpty::parse("  ").is_none());
        assert_eq!(NonEmpty::parse(" a ").unwrap().as_str(), "a");
    }
}
