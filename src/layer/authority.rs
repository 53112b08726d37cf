//! One authority per request, before the rules see it (RFC 9112 §3.2, RFC 9113 §8.3.1): a
//! request with more than one `Host` line is answered 400; a request whose target carries an
//! authority (absolute form in HTTP/1.1, `:authority` in HTTP/2, both of which `http::Uri`
//! holds) is decided for that authority, and its `Host` header, when present and different, is
//! set to it, so that the service it reaches sees the host whose rules ran.

use http::{HeaderValue, Request, Response, StatusCode, header};

use super::body::MeshBody;

/// The body of the 400 answer to a request with several `Host` lines.
pub(crate) const MULTIPLE_HOSTS: &str = "more than one Host header";

/// Makes the request's `Host` agree with its target's authority; `false` when the request
/// names more than one host in `Host` lines (answer it with [`bad_request`]).
#[inline]
pub(crate) fn settle<B>(req: &mut Request<B>) -> bool {
    let headers = req.headers();
    // Most requests send every header once: then no lookup is needed to know it.
    if headers.len() != headers.keys_len() && headers.get_all(header::HOST).iter().nth(1).is_some()
    {
        return false;
    }
    if let Some(authority) = req.uri().authority()
        && let Some(host) = headers.get(header::HOST)
        && host.as_bytes() != authority.as_str().as_bytes()
    {
        overwrite_host(req);
    }
    true
}

/// Sets `Host` to the target's authority without its user information.
#[cold]
fn overwrite_host<B>(req: &mut Request<B>) {
    let Some(authority) = req.uri().authority() else {
        return;
    };
    let value = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    match HeaderValue::from_str(&value) {
        Ok(value) => {
            req.headers_mut().insert(header::HOST, value);
        }
        Err(_) => {
            req.headers_mut().remove(header::HOST);
        }
    }
}

/// The 400 answer to a request with several `Host` lines.
#[cold]
pub(crate) fn bad_request<B>() -> Response<MeshBody<B>> {
    tracing::debug!(target: "tower_mesh", "request with several Host lines answered 400");
    let mut res = Response::new(MeshBody::local(MULTIPLE_HOSTS));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}
