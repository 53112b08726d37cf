//! Carrying out a forward decision's changes to the request and the response: the path and
//! authority rewrite, and the header operations (docs/semantics.md §3).

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Uri};
use http::{HeaderMap, HeaderValue, Request, Response};

use super::header_policy::{HeaderOperations, HeaderPolicy};
use super::route::Route;

fn apply_ops(headers: &mut HeaderMap, ops: &HeaderOperations) {
    for name in &ops.remove {
        headers.remove(name);
    }
    for (name, value) in &ops.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &ops.add {
        headers.append(name.clone(), value.clone());
    }
}

/// The longest path and query an `http::Uri` holds, in bytes.
const MAX_PATH_AND_QUERY: usize = u16::MAX as usize - 1;

/// Why a forward decision's rewrite could not be applied to a request. The request must not be
/// sent on as it was: the layer answers it itself with [`RewriteError::status`].
///
/// ```
/// use http::{Request, StatusCode};
/// use tower_mesh::{Context, NeverSampler, RewriteError, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: files}
/// spec:
///   hosts: [files]
///   http:
///   - match: [{uri: {prefix: /pub}}]
///     rewrite: {uri: /sandbox/tenant-a/pub}
///     route: [{destination: {host: files}}]
/// "#)?;
/// let mut req = Request::get(format!("/pub/{}", "a".repeat(65_520))).body(())?;
/// let decision = rules.evaluate(&req, &Context::new().with_host("files"), &NeverSampler);
/// let err = decision.apply_request(&mut req).unwrap_err();
/// assert!(matches!(err, RewriteError::TooLong { .. }));
/// assert_eq!(err.status(), StatusCode::URI_TOO_LONG);
/// assert!(req.uri().path().starts_with("/pub/"), "the request is left as it was");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewriteError {
    /// The rewritten path (with the query) would be longer than a URI can hold (65,534 bytes).
    TooLong {
        /// The most bytes the rewritten path could have had.
        limit: usize,
    },
    /// The rewrite gave a path that is not a valid URI path.
    Invalid {
        /// The path the rewrite gave.
        path: String,
    },
}

impl RewriteError {
    /// The status the layer answers with: 414 (URI Too Long) when the client's path made the
    /// rewritten one too long, 500 when the configured rewrite gives an invalid path.
    pub fn status(&self) -> http::StatusCode {
        match self {
            RewriteError::TooLong { .. } => http::StatusCode::URI_TOO_LONG,
            RewriteError::Invalid { .. } => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::TooLong { limit } => write!(
                f,
                "the rewritten path would be longer than the {limit} bytes a URI can hold here"
            ),
            RewriteError::Invalid { path } => {
                write!(
                    f,
                    "the rewrite gives {path:?}, which is not a valid URI path"
                )
            }
        }
    }
}

impl std::error::Error for RewriteError {}

/// The path a rewrite gives `path`, if the route rewrites it, within `limit` bytes.
fn rewritten_path(
    entry: Option<u32>,
    route: &Route,
    path: &str,
    limit: usize,
) -> Option<Result<String, RewriteError>> {
    let rewrite = route.policy.rewrite.as_ref()?;
    if let Some(uri) = &rewrite.uri {
        // Exact and regex matches swap the whole path.
        let keep_from = match rewrite.full_path {
            true => None,
            false => route.matched_prefix_len(entry),
        };
        let kept = keep_from
            .filter(|&n| n <= path.len())
            .map_or("", |n| &path[n..]);
        if uri.len() + kept.len() > limit {
            return Some(Err(RewriteError::TooLong { limit }));
        }
        // An empty result (a Gateway API prefix replaced by `/`) is the root.
        let new = format!("{uri}{kept}");
        return Some(Ok(if new.is_empty() { "/".into() } else { new }));
    }
    let r = rewrite.uri_regex.as_ref()?;
    Some(
        r.apply(path, limit)
            .map_err(|e| RewriteError::TooLong { limit: e.limit }),
    )
}

/// Applies `route`'s rewrite and request header operations, then those of the destination
/// chosen (`destination_headers`), to a request taken by match entry `entry`.
pub(super) fn apply_request<B>(
    route: &Route,
    entry: Option<u32>,
    destination_headers: Option<&HeaderPolicy>,
    req: &mut Request<B>,
) -> Result<(), RewriteError> {
    let policy = &route.policy;
    // Path.
    let query = req.uri().query();
    let limit = MAX_PATH_AND_QUERY - query.map_or(0, |q| q.len() + 1);
    if let Some(path) = rewritten_path(entry, route, req.uri().path(), limit) {
        let path = path?;
        let pq = match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let invalid = |pq: String| RewriteError::Invalid { path: pq };
        let parsed = PathAndQuery::try_from(pq.as_str()).map_err(|_| invalid(pq.clone()))?;
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(parsed);
        *req.uri_mut() = Uri::from_parts(parts).map_err(|_| invalid(pq))?;
    }
    // Authority: `rewrite.authority`, else one set through the header operations.
    let authority = policy
        .rewrite
        .as_ref()
        .and_then(|r| r.authority.as_deref())
        .or(policy.headers.authority.as_deref())
        .or(destination_headers.and_then(|h| h.authority.as_deref()));
    if let Some(a) = authority
        && let (Ok(value), Ok(parsed)) = (HeaderValue::from_str(a), Authority::try_from(a))
    {
        req.headers_mut().insert(HOST, value);
        if req.uri().authority().is_some() {
            let mut parts = req.uri().clone().into_parts();
            parts.authority = Some(parsed);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    // Headers: route level, then the destination's (which wins for `set`).
    apply_ops(req.headers_mut(), &policy.headers.request);
    if let Some(h) = destination_headers {
        apply_ops(req.headers_mut(), &h.request);
    }
    Ok(())
}

/// Applies `route`'s response header operations, then those of the destination chosen.
pub(super) fn apply_response<B>(
    route: &Route,
    destination_headers: Option<&HeaderPolicy>,
    res: &mut Response<B>,
) {
    apply_ops(res.headers_mut(), &route.policy.headers.response);
    if let Some(h) = destination_headers {
        apply_ops(res.headers_mut(), &h.response);
    }
}
