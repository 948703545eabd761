//! Query-string parsing for the few endpoints that take parameters (`since`, `limit`, `after`).
//!
//! Values are plain decimal numbers or hex ids, so no percent-decoding is needed: anything else is
//! a `bad_request`. Unknown parameters are ignored (forward compatibility); a repeated parameter
//! is refused, so that two layers can never read two different values.

use crate::error::{Error, Result};

/// The raw `key=value` pairs of a query string.
pub(crate) struct Query<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Query<'a> {
    /// Splits a query string; `None` means no query.
    pub(crate) fn parse(query: Option<&'a str>) -> Result<Self> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for pair in query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if pairs.iter().any(|(seen, _)| *seen == key) {
                return Err(Error::BadRequest(format!(
                    "query parameter {key:?} repeated"
                )));
            }
            pairs.push((key, value));
        }
        Ok(Query { pairs })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| *value)
    }

    /// A decimal `u64` parameter, or `default` when absent.
    pub(crate) fn u64(&self, key: &str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(value) if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => value
                .parse()
                .map_err(|_| Error::BadRequest(format!("query parameter {key:?} is too large"))),
            Some(_) => Err(Error::BadRequest(format!(
                "query parameter {key:?} must be a decimal number"
            ))),
        }
    }

    /// A page size: `default` when absent, refused when 0, capped at `max`.
    pub(crate) fn limit(&self, default: usize, max: usize) -> Result<usize> {
        let limit = self.u64("limit", default as u64)?;
        if limit == 0 {
            return Err(Error::BadRequest("limit must be at least 1".into()));
        }
        Ok(usize::try_from(limit).unwrap_or(max).min(max))
    }

    /// A raw string parameter.
    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_limits() {
        let query = Query::parse(Some("since=5&limit=20000&x")).expect("parses");
        assert_eq!(query.u64("since", 0).expect("since"), 5);
        assert_eq!(query.u64("absent", 9).expect("default"), 9);
        assert_eq!(query.limit(100, 1000).expect("capped"), 1000);
        assert!(
            Query::parse(Some("since=-1"))
                .expect("parses")
                .u64("since", 0)
                .is_err()
        );
        assert!(Query::parse(Some("since=1&since=2")).is_err());
        assert!(
            Query::parse(Some("limit=0"))
                .expect("parses")
                .limit(10, 10)
                .is_err()
        );
        assert!(
            Query::parse(Some("since=99999999999999999999999"))
                .expect("parses")
                .u64("since", 0)
                .is_err()
        );
        assert_eq!(
            Query::parse(None)
                .expect("empty")
                .limit(7, 10)
                .expect("default"),
            7
        );
    }
}
