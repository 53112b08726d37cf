//! VirtualService routes: what they do besides forwarding (redirects, direct responses,
//! rewrites, retries, faults, CORS).

use bytes::Bytes;
use http::StatusCode;

use super::{Result, VirtualServiceLowering};
use crate::config::error::ErrorKind;
use crate::config::path::FieldPath;
use crate::config::wire::networking as wire;
use crate::model::{
    AbortFault, AbortStatus, Action, CorsPolicy, DelayFault, DirectResponse, Fault, HeaderPolicy,
    Redirect, RedirectPath, RedirectPort, RegexRewrite, RetryPolicy, Rewrite, StringMatch,
};

/// The methods a CORS policy may allow, as Istio's validation lists them.
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// The largest direct-response body Istio accepts (Pilot's `DefaultMaxDirectResponseBodySizeBytes`).
const MAX_DIRECT_RESPONSE_BODY: usize = 1 << 20;

const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

impl VirtualServiceLowering<'_, '_> {
    /// `rewrite`: a path (`uri` or `uriRegexRewrite`) and an authority, set once.
    pub(super) fn rewrite(
        &mut self,
        rpath: &FieldPath,
        rw: wire::HttpRewrite,
        headers: &HeaderPolicy,
    ) -> Result<Rewrite> {
        let mut rw = rw;
        // Proto3: an empty string is unset.
        for field in [&mut rw.uri, &mut rw.authority] {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        if rw.uri.is_none() && rw.authority.is_none() && rw.uri_regex_rewrite.is_none() {
            return Err(self.missing(
                rpath,
                "a rewrite needs `uri`, `authority` or `uriRegexRewrite` (empty values count as unset)",
            ));
        }
        if rw.uri.is_some() && rw.uri_regex_rewrite.is_some() {
            return Err(self.conflict(rpath, "`uri` and `uriRegexRewrite` cannot be used together"));
        }
        if rw.authority.is_some() && headers.authority().is_some() {
            return Err(self.conflict(rpath, "the authority is rewritten twice: by `rewrite.authority` and by `headers.request` (`:authority`/`host`)"));
        }
        let uri_regex = match rw.uri_regex_rewrite {
            Some(rr) => Some(self.regex_rewrite(&rpath.key("uriRegexRewrite"), rr)?),
            None => None,
        };
        if let Some(uri) = &rw.uri
            && (!uri.starts_with('/') || http::uri::PathAndQuery::try_from(uri.as_str()).is_err())
        {
            return Err(self.invalid(
                &rpath.key("uri"),
                uri,
                "a rewrite path must start with `/` and be a valid URI path",
            ));
        }
        Ok(Rewrite::new(
            rw.uri.map(String::into_boxed_str),
            rw.authority.map(String::into_boxed_str),
            uri_regex,
        ))
    }

    /// `uriRegexRewrite`: its regex, checked like any other and counted against the limits.
    pub(super) fn regex_rewrite(
        &mut self,
        p: &FieldPath,
        rr: wire::RegexRewrite,
    ) -> Result<RegexRewrite> {
        let Some(pattern) = rr.match_ else {
            return Err(self.missing(&p.key("match"), "`uriRegexRewrite` needs `match`"));
        };
        let Some(rewrite) = rr.rewrite else {
            return Err(self.missing(&p.key("rewrite"), "`uriRegexRewrite` needs `rewrite`"));
        };
        // Validates syntax and size like any regex; rewriting matches anywhere.
        self.regex(&p.key("match"), &pattern)?;
        let max = self.options.limits.max_regex_size;
        let rewrite = RegexRewrite::new(&pattern, &rewrite, max)
            .map_err(|e| self.invalid(&p.key("match"), &pattern, &e.message))?;
        self.charge_regex(&p.key("match"), &pattern, rewrite.heap_bytes())?;
        Ok(rewrite)
    }

    pub(super) fn redirect(
        &mut self,
        path: &FieldPath,
        mut r: wire::HttpRedirect,
    ) -> Result<Action> {
        // Proto3: a field equal to its zero value is unset (`uri: ""` keeps the path).
        for field in [
            &mut r.uri,
            &mut r.authority,
            &mut r.scheme,
            &mut r.prefix_rewrite,
        ] {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        let nothing = r.uri.is_none()
            && r.authority.is_none()
            && r.scheme.is_none()
            && r.port.is_none()
            && r.derive_port.is_none()
            && r.prefix_rewrite.is_none();
        if nothing {
            return Err(self.missing(
                path,
                "a redirect needs one of `uri`, `prefixRewrite`, `authority`, `scheme`, `port` or `derivePort` \
                 (empty values count as unset); without any it would send the client back to \
                 the same URL",
            ));
        }
        let code = match r.redirect_code {
            None | Some(0) => StatusCode::MOVED_PERMANENTLY,
            Some(c @ (301 | 302 | 303 | 307 | 308)) => {
                StatusCode::from_u16(c as u16).unwrap_or(StatusCode::MOVED_PERMANENTLY)
            }
            Some(c) => {
                return Err(self.invalid(
                    &path.key("redirectCode"),
                    &c.to_string(),
                    "a redirect code must be 301, 302, 303, 307 or 308",
                ));
            }
        };
        let port = self.redirect_port(path, r.port, r.derive_port.as_deref())?;
        let path_rule = match (r.uri, r.prefix_rewrite) {
            (Some(uri), _) => RedirectPath::Replace(uri.into_boxed_str()),
            (None, Some(prefix)) => RedirectPath::ReplacePrefix(prefix.into_boxed_str()),
            (None, None) => RedirectPath::Keep,
        };
        Ok(Action::Redirect(Redirect::new(
            path_rule,
            r.authority.map(String::into_boxed_str),
            port,
            r.scheme.map(String::into_boxed_str),
            code,
        )))
    }

    /// A redirect's `port` or `derivePort` (not both).
    fn redirect_port(
        &self,
        path: &FieldPath,
        port: Option<u32>,
        derive_port: Option<&str>,
    ) -> Result<Option<RedirectPort>> {
        let port = match (port, derive_port) {
            (Some(_), Some(_)) => {
                return Err(self.conflict(path, "`port` and `derivePort` cannot be used together"));
            }
            (Some(p), None) => match u16::try_from(p) {
                Ok(p) if p > 0 => Some(RedirectPort::Number(p)),
                _ => {
                    return Err(self.invalid(
                        &path.key("port"),
                        &p.to_string(),
                        "a port must be between 1 and 65535",
                    ));
                }
            },
            (None, Some("FROM_PROTOCOL_DEFAULT")) => Some(RedirectPort::FromProtocolDefault),
            (None, Some("FROM_REQUEST_PORT")) => Some(RedirectPort::FromRequestPort),
            (None, Some(other)) => {
                return Err(self.invalid(
                    &path.key("derivePort"),
                    other,
                    "allowed: FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT",
                ));
            }
            (None, None) => None,
        };
        Ok(port)
    }

    pub(super) fn direct_response(
        &mut self,
        path: &FieldPath,
        d: wire::HttpDirectResponse,
    ) -> Result<Action> {
        let Some(status) = d.status else {
            return Err(self.missing(&path.key("status"), "a direct response needs a `status`"));
        };
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                self.invalid(
                    &path.key("status"),
                    &status.to_string(),
                    "a status must be between 200 and 599",
                )
            })?;
        let body = match d.body {
            None => None,
            Some(b) => {
                let bpath = path.key("body");
                let bytes = match (b.string, b.bytes) {
                    (Some(_), Some(_)) => {
                        return Err(
                            self.conflict(&bpath, "only one of `string` and `bytes` may be set")
                        );
                    }
                    (Some(s), None) => Bytes::from(s),
                    (None, Some(b64)) => Bytes::from(decode_base64(&b64).ok_or_else(|| {
                        self.invalid(&bpath.key("bytes"), &b64, "`bytes` must be base64")
                    })?),
                    (None, None) => Bytes::new(),
                };
                // Pilot raises Envoy's 4 KiB default for inline bodies to 1 MiB.
                if bytes.len() > MAX_DIRECT_RESPONSE_BODY {
                    return Err(self.invalid(
                        &bpath,
                        &format!("{} bytes", bytes.len()),
                        "a direct response body is limited to 1 MiB (1048576 bytes), as Istio limits it",
                    ));
                }
                Some(bytes)
            }
        };
        Ok(Action::DirectResponse(DirectResponse::new(status, body)))
    }

    pub(super) fn retries(
        &mut self,
        path: &FieldPath,
        r: wire::HttpRetry,
    ) -> Result<Option<RetryPolicy>> {
        let attempts = r.attempts.unwrap_or(0);
        if attempts < 0 {
            return Err(self.invalid(
                &path.key("attempts"),
                &attempts.to_string(),
                "attempts must not be negative",
            ));
        }
        if attempts == 0
            && (r.per_try_timeout.is_some()
                || r.retry_on.is_some()
                || r.backoff.is_some()
                || r.retry_remote_localities.is_some())
        {
            return Err(self.conflict(path, "`attempts: 0` disables retries, so `perTryTimeout`, `retryOn`, `retryRemoteLocalities` and `backoff` must not be set"));
        }
        let per_try_timeout = match &r.per_try_timeout {
            Some(d) => Some(self.duration(&path.key("perTryTimeout"), d)?),
            None => None,
        };
        let backoff = match &r.backoff {
            Some(d) => Some(self.duration(&path.key("backoff"), d)?),
            None => None,
        };
        let mut retry_on = Vec::new();
        for token in r
            .retry_on
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let is_code = token.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
            if !is_code && !RETRY_ON.contains(&token) {
                return Err(self.invalid(
                    &path.key("retryOn"),
                    token,
                    &format!(
                        "unknown retry condition; allowed: {} or an HTTP status code",
                        RETRY_ON.join(", ")
                    ),
                ));
            }
            retry_on.push(token.into());
        }
        if attempts == 0 {
            return Ok(None);
        }
        if retry_on.is_empty() {
            retry_on = RetryPolicy::default_retry_on();
        }
        Ok(Some(RetryPolicy::new(
            attempts as u32,
            per_try_timeout,
            retry_on,
            backoff,
        )))
    }

    pub(super) fn fault(&mut self, path: &FieldPath, f: wire::HttpFaultInjection) -> Result<Fault> {
        if f.delay.is_none() && f.abort.is_none() {
            return Err(self.missing(path, "a fault needs `delay`, `abort` or both"));
        }
        let mut fault = Fault::default();
        if let Some(d) = f.delay {
            let dpath = path.key("delay");
            if d.exponential_delay.is_some() {
                return Err(self.invalid(
                    &dpath.key("exponentialDelay"),
                    "exponentialDelay",
                    "Istio does not support exponentialDelay",
                ));
            }
            let ppm = self.fault_percent(&dpath, d.percentage, d.percent, "delay", false)?;
            match &d.fixed_delay {
                Some(fixed) => {
                    let duration = self.duration(&dpath.key("fixedDelay"), fixed)?;
                    fault.set_delay(DelayFault::new(duration, ppm));
                }
                None => self.warn(
                    Some(&dpath),
                    "the delay has no `fixedDelay`, so Istio drops it; no delay is injected",
                ),
            }
        }
        if let Some(a) = f.abort {
            let apath = path.key("abort");
            if a.http2_error.is_some() {
                return Err(self.invalid(
                    &apath.key("http2Error"),
                    a.http2_error.as_deref().unwrap_or_default(),
                    "http2Error aborts are not supported by Istio",
                ));
            }
            let ppm = self.fault_percent(&apath, a.percentage, a.percent, "abort", true)?;
            let status = match (a.http_status, a.grpc_status.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(self.conflict(
                        &apath,
                        "only one of `httpStatus` and `grpcStatus` may be set",
                    ));
                }
                (Some(s), None) => Some(AbortStatus::Http(
                    self.abort_status(&apath.key("httpStatus"), s)?,
                )),
                (None, Some(g)) => {
                    Some(AbortStatus::Grpc(super::grpc_code(g).ok_or_else(|| {
                        self.invalid(
                            &apath.key("grpcStatus"),
                            g,
                            "expected a gRPC status name such as UNAVAILABLE (not a number)",
                        )
                    })?))
                }
                (None, None) => {
                    self.warn(
                        Some(&apath),
                        "abort configured, but no `httpStatus` or `grpcStatus`: Istio drops it",
                    );
                    None
                }
            };
            if let Some(status) = status {
                fault.set_abort(AbortFault::new(status, ppm));
            }
        }
        Ok(fault)
    }

    pub(super) fn fault_percent(
        &mut self,
        path: &FieldPath,
        percentage: Option<wire::Percent>,
        percent: Option<i32>,
        what: &str,
        removed: bool,
    ) -> Result<u32> {
        if let Some(p) = percentage {
            return self.percentage(&path.key("percentage").key("value"), p.value.unwrap_or(0.0));
        }
        if let Some(pct) = percent {
            let ppath = path.key("percent");
            if !(0..=100).contains(&pct) {
                return Err(self.invalid(
                    &ppath,
                    &pct.to_string(),
                    "a percent must be between 0 and 100",
                ));
            }
            if removed {
                // Istio 1.5 removed it: the API server prunes it and the abort never fires.
                // Mapping it would give it a meaning Istio never gives, so it is refused.
                return Err(self.error(
                    ErrorKind::UnknownField,
                    &ppath,
                    Some(&pct.to_string()),
                    format!(
                        "`{what}.percent` was removed in Istio 1.5, which drops it (the {what} \
                         would never fire); write `percentage: {{value: {pct}}}`"
                    ),
                ));
            }
            self.warn(
                Some(&ppath),
                format!("`{what}.percent` is deprecated; read as `percentage: {{value: {pct}}}`"),
            );
            return Ok(pct as u32 * 10_000);
        }
        self.warn(
            Some(path),
            format!("the {what} has no percentage; it will never trigger (Istio's behaviour)"),
        );
        Ok(0)
    }

    /// `allowMethods` from Istio's list (letter case counts); `allowHeaders` and
    /// `exposeHeaders` valid, non-empty header names.
    pub(super) fn check_cors_lists(
        &self,
        path: &FieldPath,
        methods: &[String],
        allow_headers: &Option<Vec<String>>,
        expose_headers: &Option<Vec<String>>,
    ) -> Result<()> {
        for (i, m) in methods.iter().enumerate() {
            if !CORS_METHODS.contains(&m.as_str()) {
                return Err(self.invalid(
                    &path.key("allowMethods").index(i),
                    m,
                    &format!("allowed: {} (letter case counts)", CORS_METHODS.join(", ")),
                ));
            }
        }
        for (field, names) in [
            ("allowHeaders", allow_headers),
            ("exposeHeaders", expose_headers),
        ] {
            for (i, name) in names.iter().flatten().enumerate() {
                if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(self.invalid(
                        &path.key(field).index(i),
                        name,
                        "not a valid header name",
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn cors(&mut self, path: &FieldPath, c: wire::CorsPolicy) -> Result<CorsPolicy> {
        let mut allow_origins = Vec::new();
        for (i, m) in c.allow_origins.iter().flatten().enumerate() {
            let p = path.key("allowOrigins").index(i);
            // An origin match must say something (Istio's validation): no `{}`, no empty value.
            let empty = [&m.exact, &m.prefix, &m.regex]
                .iter()
                .all(|v| v.as_deref().is_none_or(str::is_empty));
            if empty {
                return Err(self.missing(
                    &p,
                    "an `allowOrigins` entry needs a non-empty `exact`, `prefix` or `regex`",
                ));
            }
            allow_origins.push(self.string_match(&p, m, false, false, false)?);
        }
        if c.allow_origin.is_some() {
            self.warn(
                Some(&path.key("allowOrigin")),
                "`allowOrigin` is deprecated; use `allowOrigins`",
            );
            if c.allow_origins.is_none() {
                for o in c.allow_origin.iter().flatten() {
                    allow_origins.push(if o == "*" {
                        StringMatch::present()
                    } else {
                        StringMatch::exact(o)
                    });
                }
            }
        }
        let max_age = match &c.max_age {
            Some(d) => Some(self.duration(&path.key("maxAge"), d)?),
            None => None,
        };
        if let Some(age) = max_age.filter(|a| a.subsec_nanos() != 0) {
            let value = format!("{age:?}");
            return Err(self.invalid(
                &path.key("maxAge"),
                &value,
                "`maxAge` is sent in whole seconds; write a whole number of seconds",
            ));
        }
        let forward_unmatched_preflights = match c.unmatched_preflights.as_deref() {
            None | Some("UNSPECIFIED") | Some("FORWARD") => true,
            Some("IGNORE") => false,
            Some(other) => {
                return Err(self.invalid(
                    &path.key("unmatchedPreflights"),
                    other,
                    "allowed: UNSPECIFIED, FORWARD, IGNORE",
                ));
            }
        };
        let methods = c.allow_methods.unwrap_or_default();
        self.check_cors_lists(path, &methods, &c.allow_headers, &c.expose_headers)?;
        let boxed = |v: Option<Vec<String>>| {
            v.unwrap_or_default()
                .into_iter()
                .map(String::into_boxed_str)
                .collect()
        };
        Ok(CorsPolicy::new(
            allow_origins,
            boxed(Some(methods)),
            boxed(c.allow_headers),
            boxed(c.expose_headers),
            max_age,
            c.allow_credentials,
            forward_unmatched_preflights,
        ))
    }
}

/// Standard base64 (with or without padding); `None` when malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("a$b").is_none());
    }
}
