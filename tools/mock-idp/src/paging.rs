//! Offset paging, which the list endpoints of all three providers share. A page token encodes
//! the offset of the page's first item, so clients must treat it as opaque.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// Decodes a page token, or returns `None` for a token the mock did not issue.
pub(crate) fn decode_offset(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

/// A provider's handling of a requested page size above its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AboveMax {
    Reject,
    /// Okta lowers it to the maximum.
    Lower,
}

/// The query parameters and limits of one provider's paging.
pub(crate) struct Paging {
    /// The page size parameter: `$top`, `maxResults` or `limit`.
    pub size_parameter: &'static str,
    /// The page token parameter: `$skiptoken`, `pageToken` or `after`.
    pub token_parameter: &'static str,
    pub default_size: usize,
    pub max_size: usize,
    pub above_max: AboveMax,
}

/// The query parameter that makes a page request invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidPage {
    Size,
    Token,
}

impl Paging {
    /// Reads the page a request selects. A size below 1 or not a number is invalid, and so is a
    /// token the mock did not issue.
    pub(crate) fn read(&self, query: &HashMap<String, String>) -> Result<Page, InvalidPage> {
        let size = self.read_size(query)?;
        let offset = self.read_offset(query)?;
        Ok(Page { offset, size })
    }

    pub(crate) fn read_size(&self, query: &HashMap<String, String>) -> Result<usize, InvalidPage> {
        match query.get(self.size_parameter).map(|s| s.parse::<usize>()) {
            None => Ok(self.default_size),
            Some(Ok(size)) if (1..=self.max_size).contains(&size) => Ok(size),
            Some(Ok(size)) if size > self.max_size && self.above_max == AboveMax::Lower => {
                Ok(self.max_size)
            }
            Some(_) => Err(InvalidPage::Size),
        }
    }

    pub(crate) fn read_offset(
        &self,
        query: &HashMap<String, String>,
    ) -> Result<usize, InvalidPage> {
        match query.get(self.token_parameter) {
            None => Ok(0),
            Some(token) => decode_offset(token).ok_or(InvalidPage::Token),
        }
    }
}

/// The slice of a list that a request selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub offset: usize,
    pub size: usize,
}

impl Page {
    pub(crate) fn slice<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> {
        items.iter().skip(self.offset).take(self.size)
    }

    /// Returns the offset of the next page, or `None` when this page reaches the end of a list
    /// of `total` items.
    pub(crate) fn next_offset(&self, total: usize) -> Option<usize> {
        let end = self.offset.saturating_add(self.size);
        (end < total).then_some(end)
    }

    /// Returns the token of the next page, or `None` on the last page.
    pub(crate) fn next_token(&self, total: usize) -> Option<String> {
        self.next_offset(total).map(encode_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGING: Paging = Paging {
        size_parameter: "limit",
        token_parameter: "after",
        default_size: 20,
        max_size: 200,
        above_max: AboveMax::Reject,
    };

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn read_checks_size_and_token() {
        assert_eq!(
            PAGING.read(&query(&[])),
            Ok(Page {
                offset: 0,
                size: 20
            })
        );
        let token = encode_offset(40);
        assert_eq!(
            PAGING.read(&query(&[("limit", "200"), ("after", &token)])),
            Ok(Page {
                offset: 40,
                size: 200
            })
        );
        for size in ["0", "201", "-1", "ten"] {
            assert_eq!(
                PAGING.read(&query(&[("limit", size)])),
                Err(InvalidPage::Size),
                "{size}"
            );
        }
        assert_eq!(
            PAGING.read(&query(&[("after", "not-a-token")])),
            Err(InvalidPage::Token)
        );
    }

    #[test]
    fn read_lowers_size_above_max() {
        let lowering = Paging {
            above_max: AboveMax::Lower,
            ..PAGING
        };
        assert_eq!(
            lowering.read(&query(&[("limit", "5000")])).unwrap().size,
            200
        );
        assert_eq!(
            lowering.read(&query(&[("limit", "0")])),
            Err(InvalidPage::Size)
        );
    }

    #[test]
    fn next_offset_stops_at_end() {
        let page = Page {
            offset: 100,
            size: 100,
        };
        assert_eq!(page.next_offset(201), Some(200));
        assert_eq!(page.next_offset(200), None);
        let far = Page {
            offset: usize::MAX,
            size: 10,
        };
        assert_eq!(far.next_offset(usize::MAX), None);
    }
}
