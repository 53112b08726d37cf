//! Responses the middleware answers itself.

use http::{HeaderValue, Response, StatusCode, header};

use super::body::MeshBody;
use crate::model::{Action, Decision, Outcome, ResponseFlags, RewriteError};

/// Envoy's abort body.
pub(crate) const ABORT_BODY: &str = "fault filter abort";
/// Envoy's body when no endpoint carries the chosen labels.
pub(crate) const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";

fn text<B>(status: StatusCode, body: &'static str) -> Response<MeshBody<B>> {
    let mut res = Response::new(MeshBody::local(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

/// The answer to a CORS preflight: 200 with the CORS headers.
pub(crate) fn preflight_reply<B>(
    decision: &Decision,
    headers: http::HeaderMap,
    insert: bool,
) -> Response<MeshBody<B>> {
    let mut res = Response::new(MeshBody::empty());
    *res.headers_mut() = headers;
    if insert {
        res.extensions_mut().insert(decision.clone());
    }
    res
}

/// 504 `upstream request timeout`: the route timeout expired.
pub(crate) fn upstream_timeout<B>() -> Response<MeshBody<B>> {
    text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
}

/// 503 `no healthy upstream`: the chosen destination has no registered service.
pub(crate) fn no_healthy_upstream<B>(decision: &Decision, insert: bool) -> Response<MeshBody<B>> {
    let mut res = text(StatusCode::SERVICE_UNAVAILABLE, NO_HEALTHY_UPSTREAM);
    if insert {
        let mut decision = decision.clone();
        decision.add_flags(ResponseFlags::NO_HEALTHY_UPSTREAM);
        res.extensions_mut().insert(decision);
    }
    res.extensions_mut()
        .insert(LayerFlags(ResponseFlags::NO_HEALTHY_UPSTREAM));
    res
}

/// Flags the middleware found while carrying a decision out, on a response whose decision it
/// may not have inserted (a route timeout, retries used up): read by the access log and the
/// metrics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerFlags(pub(crate) ResponseFlags);

/// The answer when a forward decision's rewrite cannot be applied to the request (414 or 500,
/// see [`RewriteError::status`]): the request is not sent on unchanged. A WARN event says why.
pub(crate) fn rewrite_failed<B>(
    decision: &Decision,
    err: &RewriteError,
    insert: bool,
) -> Response<MeshBody<B>> {
    tracing::warn!(
        target: "tower_mesh",
        status = err.status().as_u16(),
        resource = decision.resource().map(tracing::field::display),
        route = decision.route_name(),
        "request answered locally, not forwarded: {err}"
    );
    let body = match err {
        RewriteError::TooLong { .. } => "rewritten path too long",
        _ => "rewritten path invalid",
    };
    let mut res = text(err.status(), body);
    if insert {
        res.extensions_mut().insert(decision.clone());
    }
    res
}

/// A gRPC answer in trailers-only form: HTTP 200 with `grpc-status` and `grpc-message`.
fn grpc_reply<B>(code: u32, message: &'static str) -> Response<MeshBody<B>> {
    let mut res = Response::new(MeshBody::empty());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code));
    h.insert("grpc-message", HeaderValue::from_static(message));
    res
}

/// The local reply for a decision that does not forward; `None` for one that does.
pub(crate) fn local_reply<B>(decision: &Decision, insert: bool) -> Option<Response<MeshBody<B>>> {
    let mut res = match decision.outcome() {
        Outcome::Forward | Outcome::PassThrough => return None,
        Outcome::Abort => match decision.grpc_status() {
            Some(code) => grpc_reply(code, ABORT_BODY),
            None => text(
                decision.status().unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                ABORT_BODY,
            ),
        },
        Outcome::NotFound => {
            let mut res = Response::new(MeshBody::empty());
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
        Outcome::Redirect => {
            let mut res = Response::new(MeshBody::empty());
            *res.status_mut() = decision.status().unwrap_or(StatusCode::MOVED_PERMANENTLY);
            if let Some(loc) = decision
                .location()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                res.headers_mut().insert(header::LOCATION, loc);
            }
            res
        }
        Outcome::DirectResponse if decision.grpc_status().is_some() => {
            grpc_reply(decision.grpc_status().unwrap_or(14), "no healthy upstream")
        }
        Outcome::DirectResponse => {
            let body = match decision.route().map(|r| r.action()) {
                Some(Action::DirectResponse(d)) => d.body().cloned(),
                _ => None,
            };
            let mut res = Response::new(match body {
                Some(b) => MeshBody::local(b),
                None => MeshBody::empty(),
            });
            *res.status_mut() = decision.status().unwrap_or(StatusCode::OK);
            // The route's response header operations still apply (e.g. content-type).
            decision.apply_response(&mut res);
            res
        }
    };
    if insert {
        res.extensions_mut().insert(decision.clone());
    }
    Some(res)
}
