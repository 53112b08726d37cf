//! The parts of an `http::Request` that matching reads, taken once per request.

use std::borrow::Cow;

use http::{HeaderMap, Request};

use super::condition::Field;

/// A borrowed view of one request; each part is read only when a condition asks for it.
pub(crate) struct RequestView<'a> {
    method: &'a http::Method,
    default_scheme: &'a str,
    uri: &'a http::Uri,
    pub(crate) headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    pub(crate) fn new<B>(req: &'a Request<B>, default_scheme: &'a str) -> Self {
        RequestView {
            method: req.method(),
            default_scheme,
            uri: req.uri(),
            headers: req.headers(),
        }
    }

    /// The path, without the query string.
    pub(crate) fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The query string, if any.
    pub(crate) fn query(&self) -> Option<&'a str> {
        self.uri.query()
    }

    /// `http` or `https`: the URI's scheme, else the connection's.
    pub(crate) fn scheme(&self) -> &'a str {
        self.uri.scheme_str().unwrap_or(self.default_scheme)
    }

    /// The authority as sent: the URI's, else the `Host` header.
    pub(crate) fn authority(&self) -> Option<&'a [u8]> {
        match self.uri.authority() {
            Some(a) => Some(a.as_str().as_bytes()),
            None => self.headers.get(http::header::HOST).map(|h| h.as_bytes()),
        }
    }

    /// The value a condition tests, `None` when absent.
    #[inline]
    pub(crate) fn field(&self, field: &Field) -> Option<Cow<'a, [u8]>> {
        match field {
            Field::Uri => Some(Cow::Borrowed(self.path().as_bytes())),
            Field::PathAndQuery => Some(Cow::Borrowed(
                self.uri
                    .path_and_query()
                    .map_or(self.path(), |pq| pq.as_str())
                    .as_bytes(),
            )),
            Field::Scheme => Some(Cow::Borrowed(self.scheme().as_bytes())),
            Field::Method => Some(Cow::Borrowed(self.method.as_str().as_bytes())),
            Field::Authority => self.authority().map(Cow::Borrowed),
            Field::Header(name) => header_value(self.headers, name),
            Field::Query(key) => query_param(self.query()?, key).map(Cow::Borrowed),
            Field::Absent(_) => None,
        }
    }

    pub(crate) fn is_grpc(&self) -> bool {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    }
}

/// All lines of a header joined with `,` (Envoy's `getAllOfHeaderAsString`).
#[inline]
pub(crate) fn header_value<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Option<Cow<'a, [u8]>> {
    // When no header has a second line (most requests), one plain lookup is the whole answer.
    if headers.len() == headers.keys_len() {
        return headers.get(name).map(|v| Cow::Borrowed(v.as_bytes()));
    }
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    match all.next() {
        None => Some(Cow::Borrowed(first.as_bytes())),
        Some(second) => {
            let mut joined = first.as_bytes().to_vec();
            for v in std::iter::once(second).chain(all) {
                joined.push(b',');
                joined.extend_from_slice(v.as_bytes());
            }
            Some(Cow::Owned(joined))
        }
    }
}

/// The raw value of the first `key` in a query string (`?k` and `?k=` give an empty value).
pub(crate) fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a [u8]> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_take_the_first_raw_value() {
        assert_eq!(query_param("a=1&b=2&a=3", "a"), Some(&b"1"[..]));
        assert_eq!(query_param("flag&x=%41", "flag"), Some(&b""[..]));
        assert_eq!(query_param("flag&x=%41", "x"), Some(&b"%41"[..]));
        assert_eq!(query_param("x=1", "y"), None);
    }

    #[test]
    fn header_lines_are_joined_with_commas() {
        let mut h = HeaderMap::new();
        h.append("x", "a".parse().unwrap());
        h.append("x", "b".parse().unwrap());
        let name = http::HeaderName::from_static("x");
        assert_eq!(header_value(&h, &name).unwrap().as_ref(), b"a,b");
    }
}
