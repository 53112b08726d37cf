//! What a layer reports about each request it carried out: an access-log event (opt-in) and,
//! with feature `metrics`, Istio's standard metrics.

use std::sync::Arc;

// Tokio's clock when there is one, so that a paused test clock measures injected delays.
#[cfg(not(feature = "tokio"))]
use std::time::Instant;
#[cfg(feature = "tokio")]
use tokio::time::Instant;

use http::{Method, Request, Response, Version};
use http_body::Body;

use super::body::MeshBody;
use super::reply::LayerFlags;
use crate::model::{Caller, Context, Decision, ResponseFlags};

/// The `tracing` target of the access log.
pub(crate) const ACCESS_LOG_TARGET: &str = "tower_mesh::access";

/// What the services of one layer report, and the values every report shares.
#[derive(Debug)]
pub(crate) struct Observer {
    pub(crate) access_log: bool,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<super::metrics::Metrics>,
}

impl Observer {
    /// An observer for a layer with `context`; `None` when nothing is reported.
    pub(crate) fn new(access_log: bool, metrics: bool, context: &Context) -> Option<Arc<Observer>> {
        #[cfg(feature = "metrics")]
        let metrics = metrics.then(|| super::metrics::Metrics::new(context));
        #[cfg(not(feature = "metrics"))]
        let _ = (metrics, context);
        #[cfg(feature = "metrics")]
        let any = access_log || metrics.is_some();
        #[cfg(not(feature = "metrics"))]
        let any = access_log;
        any.then(|| {
            Arc::new(Observer {
                access_log,
                #[cfg(feature = "metrics")]
                metrics,
            })
        })
    }
}

/// One request being observed: what is known when it arrives.
pub(crate) struct Observation {
    observer: Arc<Observer>,
    /// `destination` (a layer around one service) or `source` (a router in front of others).
    reporter: &'static str,
    start: Instant,
    decision: Decision,
    method: Method,
    /// The path, for the access log only, escaped for it ([`log_safe`]).
    path: Option<Box<str>>,
    version: Version,
    grpc: bool,
    request_bytes: u64,
    caller: Option<Caller>,
}

/// The request's `content-length` (0 when absent: a request without a body, or one streamed
/// in chunks).
fn content_length<B>(req: &Request<B>) -> u64 {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// Whether a request is gRPC (`content-type: application/grpc...`).
fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl Observation {
    pub(crate) fn start<B>(
        observer: &Arc<Observer>,
        reporter: &'static str,
        req: &Request<B>,
        decision: &Decision,
    ) -> Box<Observation> {
        Box::new(Observation {
            observer: observer.clone(),
            reporter,
            start: Instant::now(),
            decision: decision.clone(),
            method: req.method().clone(),
            path: observer.access_log.then(|| log_safe(req.uri().path())),
            version: req.version(),
            grpc: is_grpc(req),
            request_bytes: content_length(req),
            caller: req.extensions().get::<Caller>().cloned(),
        })
    }

    /// The request is answered with `res`: report it.
    pub(crate) fn finish<B: Body>(self, res: &Response<MeshBody<B>>) {
        let flags = flags_of(&self.decision, res);
        let duration = self.start.elapsed();
        let response_bytes = res.body().known_size();
        let grpc_status = grpc_status(res, &self.decision);
        if self.observer.access_log {
            self.log(res, flags, duration, response_bytes);
        }
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.observer.metrics {
            m.record(&super::metrics::Report {
                reporter: self.reporter,
                decision: &self.decision,
                caller: self.caller.as_ref(),
                grpc: self.grpc,
                status: res.status().as_u16(),
                grpc_status,
                flags,
                duration,
                request_bytes: self.request_bytes,
                response_bytes,
            });
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (grpc_status, &self.caller, self.reporter);
    }

    /// One INFO event with the fields of Envoy's default access log that apply in-process.
    fn log<B>(
        &self,
        res: &Response<B>,
        flags: ResponseFlags,
        duration: std::time::Duration,
        response_bytes: u64,
    ) {
        let d = &self.decision;
        let destination = d.destination();
        let protocol = match (self.grpc, self.version) {
            (true, _) => "grpc",
            (false, Version::HTTP_2) => "HTTP/2",
            (false, Version::HTTP_10) => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %self.method,
            path = self.path.as_deref(),
            protocol,
            status = res.status().as_u16(),
            response_flags = %flags,
            bytes_received = self.request_bytes,
            bytes_sent = response_bytes,
            duration_ms = duration.as_millis() as u64,
            outcome = d.outcome().as_str(),
            resource = d.resource().map(tracing::field::display),
            route = d.route_name(),
            destination_host = destination.map(|x| x.host()),
            destination_subset = destination.and_then(|x| x.subset()),
            "\"{} {} {}\" {} {} {} {} {}",
            self.method,
            self.path.as_deref().unwrap_or("-"),
            protocol,
            res.status().as_u16(),
            flags,
            self.request_bytes,
            response_bytes,
            duration.as_millis(),
        );
    }
}

/// The path as the access log writes it: every byte that could break or disguise the line (a
/// quote, a backslash, a control character, anything outside ASCII, such as U+2028 or U+202E)
/// percent-encoded, so that one request is one plain line whose quoted part ends where it
/// seems to.
fn log_safe(path: &str) -> Box<str> {
    let safe = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b'\\';
    if path.bytes().all(safe) {
        return path.into();
    }
    let mut out = String::with_capacity(path.len() + 8);
    for b in path.bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

/// The flags of a finished request: the decision's, and those the middleware recorded on the
/// response (in the decision it inserted, or apart).
fn flags_of<B>(decision: &Decision, res: &Response<B>) -> ResponseFlags {
    let mut flags = decision.response_flags();
    if let Some(LayerFlags(more)) = res.extensions().get::<LayerFlags>() {
        flags |= *more;
    }
    flags
}

/// The gRPC status of an answer, when its headers carry one (a trailers-only answer or a
/// local reply); `None` when it comes in trailers, after the body.
fn grpc_status<B>(res: &Response<B>, decision: &Decision) -> Option<u32> {
    res.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or(decision.grpc_status())
}

#[cfg(test)]
mod tests {
    use super::log_safe;

    #[test]
    fn the_logged_path_cannot_break_the_line() {
        assert_eq!(&*log_safe("/api/v1?x=1"), "/api/v1?x=1");
        assert_eq!(&*log_safe("/a\"b"), "/a%22b");
        assert_eq!(&*log_safe("/a\u{2028}b\u{202E}c"), "/a%E2%80%A8b%E2%80%AEc");
        assert_eq!(&*log_safe("/a\\b c\n"), "/a%5Cb%20c%0A");
    }
}
