//! The parts of an `http::Request` that matching reads, taken once per request.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;

use http::{HeaderMap, HeaderName, Request};

/// The part of a request a condition looks at.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::model::Field;
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match:
///     - headers: {end-user: {exact: jason}}
///       sourceLabels: {app: productpage}
///     fault:
///       delay: {fixedDelay: 2s, percentage: {value: 50}}
///       abort: {httpStatus: 503, percentage: {value: 1}}
///     rewrite: {uri: /v2}
///     headers: {response: {set: {x-version: v2}}}
///     route:
///     - destination: {host: reviews}
///       weight: 90
///     - destination: {host: reviews-canary}
///       weight: 10
///       headers: {request: {add: {x-canary: "yes"}}}
///   - redirect: {uri: /login, port: 8443}
/// "#)?;
/// let jason = Request::get("/").header("end-user", "jason").body(())?;
/// let ctx = Context::new()
///     .with_host("reviews")
///     .with_caller(Caller::new().with_labels([("app", "productpage")]));
/// let decision = rules.evaluate(&jason, &ctx, &NeverSampler);
/// let route = decision.route().unwrap();
/// let condition = &route.matches()[0].conditions()[0];
/// assert!(matches!(condition.field(), Field::Header(name) if name == "end-user"));
/// assert_eq!(condition.field().to_string(), "header end-user");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Field {
    /// The path, without the query string (`uri`).
    Uri,
    /// The path with its query string (the `:path` pseudo-header).
    PathAndQuery,
    /// `http` or `https` (`scheme`, `:scheme`).
    Scheme,
    /// The method token, e.g. `GET` (`method`, `:method`).
    Method,
    /// The authority as sent, port included (`authority`, `:authority`).
    Authority,
    /// A request header (lower-case name); several lines are joined with `,`.
    Header(HeaderName),
    /// The first value of a query parameter, not percent-decoded.
    Query(Box<str>),
    /// Something Istio never sees as a header (`host`, JWT claims): always absent.
    Absent(Box<str>),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Uri => f.write_str("uri"),
            Field::PathAndQuery => f.write_str(":path"),
            Field::Scheme => f.write_str("scheme"),
            Field::Method => f.write_str("method"),
            Field::Authority => f.write_str("authority"),
            Field::Header(name) => write!(f, "header {name}"),
            Field::Query(name) => write!(f, "query parameter {name}"),
            Field::Absent(name) => write!(f, "header {name}"),
        }
    }
}

/// A borrowed view of one request; each part is read only when a condition asks for it.
pub(super) struct RequestView<'a> {
    method: &'a http::Method,
    default_scheme: &'a str,
    uri: &'a http::Uri,
    pub(super) headers: &'a HeaderMap,
    /// The joined value of every header sent on more than one line, joined once for the whole
    /// evaluation; `None` when every header has one line (most requests), which costs nothing.
    joined: Option<Box<HeaderMap<Box<[u8]>>>>,
    /// The query string's parameters (first value of each name), split once, on the first
    /// condition that asks for one; a long query string costs one pass, however many
    /// conditions test it.
    params: OnceCell<QueryParams<'a>>,
}

/// The first raw value of each query parameter name. The map's hasher is keyed per process, so
/// a client cannot choose names that collide.
type QueryParams<'a> = HashMap<&'a str, &'a [u8]>;

impl<'a> RequestView<'a> {
    pub(crate) fn new<B>(req: &'a Request<B>, default_scheme: &'a str) -> Self {
        RequestView {
            method: req.method(),
            default_scheme,
            uri: req.uri(),
            headers: req.headers(),
            joined: join_repeated(req.headers()),
            params: OnceCell::new(),
        }
    }

    /// The path, without the query string.
    pub(crate) fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The query string, if any.
    pub(super) fn query(&self) -> Option<&'a str> {
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
    pub(super) fn field(&self, field: &Field) -> Option<Cow<'_, [u8]>> {
        super::cost::parsed(1);
        self.read_field(field)
    }

    #[inline]
    fn read_field(&self, field: &Field) -> Option<Cow<'_, [u8]>> {
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
            Field::Header(name) => self.header(name).map(Cow::Borrowed),
            Field::Query(key) => self.query_param(key).map(Cow::Borrowed),
            Field::Absent(_) => None,
        }
    }

    pub(super) fn is_grpc(&self) -> bool {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    }
}

impl<'a> RequestView<'a> {
    /// The first raw value of query parameter `key`, from the parameters split once.
    #[inline]
    fn query_param(&self, key: &str) -> Option<&'a [u8]> {
        let query = self.query()?;
        let params = self.params.get_or_init(|| split_query(query));
        params.get(key).copied()
    }

    /// A header's value: its one line, or all its lines joined.
    #[inline]
    fn header(&self, name: &http::HeaderName) -> Option<&[u8]> {
        if let Some(joined) = &self.joined
            && let Some(v) = joined.get(name)
        {
            return Some(v);
        }
        self.headers.get(name).map(|v| v.as_bytes())
    }
}

/// Every header sent on more than one line, with its lines joined: with `"; "` for `cookie`
/// (as Envoy rebuilds a crumbled cookie header), with `,` for the others (Envoy's
/// `getAllOfHeaderAsString`). Nothing is allocated when every header has one line.
#[inline]
fn join_repeated(headers: &HeaderMap) -> Option<Box<HeaderMap<Box<[u8]>>>> {
    if headers.len() == headers.keys_len() {
        return None;
    }
    Some(Box::new(join_lines(headers)))
}

#[cold]
fn join_lines(headers: &HeaderMap) -> HeaderMap<Box<[u8]>> {
    let mut joined = HeaderMap::default();
    for name in headers.keys() {
        let mut lines = headers.get_all(name).iter();
        let (Some(first), Some(second)) = (lines.next(), lines.next()) else {
            continue;
        };
        let sep: &[u8] = if name == http::header::COOKIE {
            b"; "
        } else {
            b","
        };
        let mut value = first.as_bytes().to_vec();
        for line in std::iter::once(second).chain(lines) {
            super::cost::parsed(line.len());
            value.extend_from_slice(sep);
            value.extend_from_slice(line.as_bytes());
        }
        joined.insert(name.clone(), value.into_boxed_slice());
    }
    joined
}

/// Every parameter of a query string with its first raw value (`?k` and `?k=` give an empty
/// value), in one pass.
#[cold]
fn split_query(query: &str) -> QueryParams<'_> {
    super::cost::parsed(query.len());
    let mut params = QueryParams::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(k).or_insert(v.as_bytes());
    }
    params
}

/// The raw value of the first `key` in a query string (`?k` and `?k=` give an empty value).
#[cfg(test)]
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a [u8]> {
    split_query(query).get(key).copied()
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
    fn header_lines_are_joined_with_commas_and_cookies_with_semicolons() {
        let mut req = Request::new(());
        let h = req.headers_mut();
        h.append("x", "a".parse().unwrap());
        h.append("x", "b".parse().unwrap());
        h.append("cookie", "user=jason".parse().unwrap());
        h.append("cookie", "theme=dark".parse().unwrap());
        h.append("y", "one".parse().unwrap());
        let view = RequestView::new(&req, "http");
        let get = |name: &'static str| view.header(&http::HeaderName::from_static(name));
        assert_eq!(get("x"), Some(&b"a,b"[..]));
        assert_eq!(get("cookie"), Some(&b"user=jason; theme=dark"[..]));
        assert_eq!(get("y"), Some(&b"one"[..]));
        assert_eq!(get("z"), None);
        let joined = view.joined.as_ref().expect("some header repeats");
        assert_eq!(
            joined.len(),
            2,
            "only the repeated headers are joined, once"
        );
    }
}
