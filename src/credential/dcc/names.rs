//! The DCC `nam` group: splitting the DDCC's single `name` into surname and forenames, and the ICAO
//! Doc 9303 Part 3 (8th ed., §6) machine-readable transliteration the DCC's `fnt`/`gnt` fields need.

/// Longest `fn`/`gn`/`fnt`/`gnt` the DCC schema allows.
pub const MAX_NAME_LEN: usize = 80;

/// A name split into surname (`fn`) and forenames (`gn`, possibly absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    pub surname: String,
    pub forenames: Option<String>,
}

/// Splits the DDCC `name` (one string) into surname and forenames.
///
/// Rule: `"Surname, Forenames"` (a comma) is taken literally, which is how a caller states the order for
/// names that put the family name first. Otherwise the last whitespace-separated word is the surname
/// and the words before it the forenames ("Eddie Murphy" → Murphy / Eddie), as the WHO reference
/// mediator does. A single word is a surname with no forenames.
pub fn split(name: &str) -> SplitName {
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((surname, forenames)) = name.split_once(',') {
        let surname = collapse(surname);
        let forenames = collapse(forenames);
        if !surname.is_empty() {
            return SplitName {
                surname,
                forenames: (!forenames.is_empty()).then_some(forenames),
            };
        }
    }
    let words: Vec<&str> = name
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    match words.split_last() {
        Some((last, [])) => SplitName {
            surname: (*last).to_string(),
            forenames: None,
        },
        Some((last, rest)) => SplitName {
            surname: (*last).to_string(),
            forenames: Some(rest.join(" ")),
        },
        None => SplitName {
            surname: String::new(),
            forenames: None,
        },
    }
}

/// ICAO 9303 transliteration to `A-Z` with `<` as separator, or `None` if a character has none
/// (only Latin and Cyrillic scripts are covered).
///
/// Spaces and hyphens become `<`; apostrophes and full stops are dropped (ICAO 9303-3 §6.A). Latin
/// letters with diacritics follow the ICAO table, using its recommended forms Ä→AE, Ö→OE, Ü→UE, Å→AA;
/// Cyrillic follows the ICAO table (Г→G as in Russian, Ь dropped).
pub fn transliterate(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        // Uppercasing first also turns ß into SS and ı into I.
        for u in c.to_uppercase() {
            match u {
                'A'..='Z' => out.push(u),
                ' ' | '-' | '\u{2010}' | '\u{2011}' | '\u{00A0}' => {
                    if !out.is_empty() && !out.ends_with('<') {
                        out.push('<');
                    }
                }
                '\'' | '\u{2019}' | '\u{02BC}' | '\u{2018}' | '`' | '.' => {}
                _ => out.push_str(latin(u).or_else(|| cyrillic(u))?),
            }
        }
    }
    while out.ends_with('<') {
        out.pop();
    }
    Some(out)
}

/// ICAO 9303-3 Table "Transliteration of multinational Latin-based characters".
fn latin(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ā' | 'Ă' | 'Ą' => "A",
        'Ä' | 'Æ' => "AE",
        'Å' => "AA",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'Ď' | 'Đ' | 'Ð' => "D",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'Ĥ' | 'Ħ' => "H",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'Ĳ' => "IJ",
        'Ĵ' => "J",
        'Ķ' => "K",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' | 'Ŋ' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'Ö' | 'Ø' | 'Œ' => "OE",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'Ś' | 'Ŝ' | 'Ş' | 'Ș' | 'Š' => "S",
        'ẞ' => "SS",
        'Ţ' | 'Ț' | 'Ť' | 'Ŧ' => "T",
        'Þ' => "TH",
        'Ù' | 'Ú' | 'Û' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'Ü' => "UE",
        'Ŵ' => "W",
        'Ý' | 'Ŷ' | 'Ÿ' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

/// ICAO 9303-3 Table "Transliteration of Cyrillic characters" (uppercase forms).
fn cyrillic(c: char) -> Option<&'static str> {
    Some(match c {
        'А' => "A",
        'Б' => "B",
        'В' => "V",
        'Г' | 'Ґ' | 'Ѓ' => "G",
        'Д' | 'Ђ' => "D",
        'Е' | 'Ё' | 'Э' => "E",
        'Є' | 'Ъ' => "IE",
        'Ж' => "ZH",
        'З' => "Z",
        'Ѕ' | 'Џ' => "DZ",
        'И' | 'І' | 'Ї' | 'Й' => "I",
        'Ј' => "J",
        'К' | 'Ќ' => "K",
        'Л' => "L",
        'Љ' => "LJ",
        'М' => "M",
        'Н' => "N",
        'Њ' => "NJ",
        'О' => "O",
        'П' => "P",
        'Р' => "R",
        'С' => "S",
        'Т' => "T",
        'Ћ' => "C",
        'У' | 'Ў' => "U",
        'Ф' => "F",
        'Х' => "KH",
        'Ц' => "TS",
        'Ч' => "CH",
        'Ш' => "SH",
        'Щ' => "SHCH",
        'Ы' => "Y",
        'Ь' => "",
        'Ю' => "IU",
        'Я' => "IA",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(surname: &str, forenames: Option<&str>) -> SplitName {
        SplitName {
            surname: surname.into(),
            forenames: forenames.map(Into::into),
        }
    }

    #[test]
    fn splits_at_the_last_word_or_at_a_comma() {
        assert_eq!(split("Eddie Murphy"), s("Murphy", Some("Eddie")));
        assert_eq!(
            split("  Jirina-Maria  Alena Novak "),
            s("Novak", Some("Jirina-Maria Alena"))
        );
        assert_eq!(split("Madonna"), s("Madonna", None));
        assert_eq!(
            split("d'Červenková Panklová, Jiřina-Maria Alena"),
            s("d'Červenková Panklová", Some("Jiřina-Maria Alena"))
        );
        assert_eq!(split("Agerius,"), s("Agerius", None));
    }

    #[test]
    fn transliterates_latin_diacritics_as_icao_9303() {
        // The DCC schema's own examples, and the Austrian test vector's name.
        assert_eq!(
            transliterate("d'Červenková Panklová").as_deref(),
            Some("DCERVENKOVA<PANKLOVA")
        );
        assert_eq!(
            transliterate("Jiřina-Maria Alena").as_deref(),
            Some("JIRINA<MARIA<ALENA")
        );
        assert_eq!(
            transliterate("Musterfrau-Gößinger").as_deref(),
            Some("MUSTERFRAU<GOESSINGER")
        );
        assert_eq!(transliterate("Øster Ærø").as_deref(), Some("OESTER<AEROE"));
        assert_eq!(transliterate("Müller Åsa").as_deref(), Some("MUELLER<AASA"));
    }

    #[test]
    fn transliterates_cyrillic_as_icao_9303() {
        // IG Russian example holder "Авл Агерий".
        assert_eq!(transliterate("Агерий").as_deref(), Some("AGERII"));
        assert_eq!(transliterate("Авл").as_deref(), Some("AVL"));
        assert_eq!(
            transliterate("Щукин-Юрьев").as_deref(),
            Some("SHCHUKIN<IUREV")
        );
        assert_eq!(transliterate("Хрущёв").as_deref(), Some("KHRUSHCHEV"));
    }

    #[test]
    fn other_scripts_cannot_be_transliterated() {
        assert_eq!(transliterate("奥卢斯"), None);
        assert_eq!(transliterate("أولوس"), None);
        assert_eq!(transliterate("R2D2"), None);
    }
}
