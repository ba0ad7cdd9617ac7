//! Percent-encoding for the query strings the mock builds: redirect locations and next-page
//! links.

/// The case of the hex digits in `%XX` escapes. Microsoft's redirects use lower case
/// (`AADSTS65004%3a+User+declined`), Google's upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexCase {
    Upper,
    Lower,
}

/// Encodes `value` as `application/x-www-form-urlencoded` does: ASCII letters, digits and
/// `-._*` stay, a space becomes `+` and every other byte becomes `%XX`.
pub fn encode(value: &str, case: HexCase) -> String {
    encode_bytes(value, case, true)
}

/// Encodes `value` for use as one path segment, where a space must be `%20`.
pub fn encode_segment(value: &str) -> String {
    encode_bytes(value, HexCase::Upper, false)
}

fn encode_bytes(value: &str, case: HexCase, space_as_plus: bool) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                encoded.push(char::from(byte));
            }
            b' ' if space_as_plus => encoded.push('+'),
            _ => match case {
                HexCase::Upper => encoded.push_str(&format!("%{byte:02X}")),
                HexCase::Lower => encoded.push_str(&format!("%{byte:02x}")),
            },
        }
    }
    encoded
}

/// Appends `pairs` to `uri` as query parameters, after the query `uri` already has, if any.
pub fn append_query(uri: &str, pairs: &[(&str, &str)], case: HexCase) -> String {
    let mut result = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in pairs {
        result.push(separator);
        result.push_str(&encode(name, case));
        result.push('=');
        result.push_str(&encode(value, case));
        separator = '&';
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_form_encoding() {
        assert_eq!(
            encode("AADSTS65004: User declined.", HexCase::Lower),
            "AADSTS65004%3a+User+declined."
        );
        assert_eq!(encode("a/b:c", HexCase::Upper), "a%2Fb%3Ac");
        assert_eq!(encode("é", HexCase::Upper), "%C3%A9");
        assert_eq!(encode_segment("a b#c"), "a%20b%23c");
    }

    #[test]
    fn append_query_keeps_existing_query() {
        assert_eq!(
            append_query("http://h/cb?x=1", &[("state", "s 1")], HexCase::Upper),
            "http://h/cb?x=1&state=s+1"
        );
        assert_eq!(
            append_query("http://h/cb", &[("a", "1"), ("b", "2")], HexCase::Upper),
            "http://h/cb?a=1&b=2"
        );
    }
}
