//! Compact JSON text of `serde_json::Value` trees, byte for byte what `serde_json::to_vec` writes, for the
//! large documents every certificate sends (the FHIR transaction, the answer to the caller).
//!
//! Why not `serde_json::to_vec`: it looks every byte of a string up in its escape table, about nine
//! instructions a byte, and most of what a certificate sends is base64 (the PDF, the QR images) that needs
//! no escape at all. Here a string is checked eight bytes at a time and copied in one piece until a byte
//! that needs an escape turns up; the escapes themselves are serde_json's (`\"`, `\\`, `\b`, `\f`, `\n`,
//! `\r`, `\t`, other control characters as `\u00xx`; nothing else, not even DEL or non-ASCII).

use serde_json::Value;

/// `value` as compact JSON text.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(&mut out, value);
    out
}

/// Appends `value` as compact JSON text.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // `Number`'s Display is its JSON form (itoa and ryu, as its serialiser).
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_array(out, items, write_value),
        Value::Object(map) => write_object(out, map, |out, _, item| write_value(out, item)),
    }
}

/// Appends `items` as a JSON array, each item written by `write`.
pub fn write_array<'a>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = &'a Value>,
    mut write: impl FnMut(&mut Vec<u8>, &'a Value),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Appends `entries` as a JSON object, each value written by `write` (which is told its key).
pub fn write_object<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
    mut write: impl FnMut(&mut Vec<u8>, &'a str, &'a Value),
) {
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write(out, key, item);
    }
    out.push(b'}');
}

/// Appends `s` as a JSON string, quoted and escaped.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none of them needs an escape; the last few padded with a letter.
        let word = match bytes.get(i..i + 8) {
            Some(word) => u64::from_le_bytes(word.try_into().unwrap_or([0; 8])),
            None => {
                let mut tail = [b'A'; 8];
                tail[..bytes.len() - i].copy_from_slice(&bytes[i..]);
                u64::from_le_bytes(tail)
            }
        };
        if !needs_escape(word) {
            i += 8;
            continue;
        }
        // One of these eight needs an escape: write everything before it, then the escape.
        let end = (i + 8).min(bytes.len());
        while i < end {
            let byte = bytes[i];
            i += 1;
            if let Some(escape) = escape_of(byte) {
                out.extend_from_slice(&bytes[start..i - 1]);
                match escape {
                    Escape::Short(c) => out.extend_from_slice(&[b'\\', c]),
                    Escape::Unicode => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        out.extend_from_slice(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[usize::from(byte >> 4)],
                            HEX[usize::from(byte & 0xf)],
                        ]);
                    }
                }
                start = i;
                break;
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

enum Escape {
    /// `\` and this character.
    Short(u8),
    /// `\u00xx`.
    Unicode,
}

fn escape_of(byte: u8) -> Option<Escape> {
    Some(match byte {
        b'"' => Escape::Short(b'"'),
        b'\\' => Escape::Short(b'\\'),
        0x08 => Escape::Short(b'b'),
        0x0c => Escape::Short(b'f'),
        b'\n' => Escape::Short(b'n'),
        b'\r' => Escape::Short(b'r'),
        b'\t' => Escape::Short(b't'),
        0x00..=0x1f => Escape::Unicode,
        _ => return None,
    })
}

/// Whether any of the eight bytes of `word` is a control character, `"` or `\`: the "has a byte less than
/// n" test (Sean Anderson's Bit Twiddling Hacks), exact for the word as a whole, on `word` itself with
/// n = 0x20 and on `word` xor the character with n = 1 for the other two.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // High bit of a byte set where that byte is below n (for the word as a whole; see above).
    let less = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (less(word, 0x20) | less(quote, 1) | less(backslash, 1)) & (ONES * 0x80) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde_json(value: &Value) {
        assert_eq!(
            String::from_utf8(to_vec(value)).unwrap(),
            serde_json::to_string(value).unwrap(),
            "{value:?}"
        );
    }

    #[test]
    fn every_character_below_128_alone_and_in_runs_is_written_as_serde_json_writes_it() {
        for byte in 0u8..128 {
            let c = char::from(byte);
            for len in [1, 7, 8, 9, 17] {
                for at in [0, len / 2, len - 1] {
                    let mut s: Vec<char> = "abcdefghijklmnopqr".chars().take(len).collect();
                    s[at] = c;
                    same_as_serde_json(&Value::String(s.into_iter().collect()));
                }
            }
        }
    }

    #[test]
    fn non_ascii_and_mixed_strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "Zoë Ångström-Durand",
            "日本語のテキスト\"引用\"",
            "\u{7f}\u{80}\u{ff}\u{2028}\u{1F600}",
            "ÿ\"ÿ\\ÿ\nÿÿÿÿÿÿÿÿÿÿ",
            "\u{1}\u{1f} \u{20}",
        ] {
            same_as_serde_json(&json!(s));
        }
        // Pseudo-random strings over a small alphabet full of escapes and multi-byte characters.
        let alphabet: Vec<char> = "aZ09+/=\"\\\n\t\u{0}\u{1f}é€😀 ".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 40) {
                s.push(alphabet[((seed >> (k % 50)) as usize + k as usize) % alphabet.len()]);
            }
            same_as_serde_json(&Value::String(s));
        }
    }

    #[test]
    fn documents_are_written_as_serde_json_writes_them() {
        same_as_serde_json(&json!({
            "resourceType": "Bundle", "n": [0, -1, 18446744073709551615u64, -9223372036854775808i64,
                0.1, 1e300, -2.5e-8, 3.0], "t": true, "f": false, "z": null, "empty": {}, "none": [],
            "nested": [{"a": {"b": ["c", {"d": "e\u{0}"}]}}], "order": {"z": 1, "a": 2},
        }));
        let example = include_str!("../examples/vaccination-event.json");
        same_as_serde_json(&serde_json::from_str(example).unwrap());
    }
}
