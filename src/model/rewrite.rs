//! Carrying out a forward decision's changes to the request and the response: the path and
//! authority rewrite, and the header operations (SEMANTICS.md §2.5.6, §2.5.8).

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Uri};
use http::{HeaderMap, HeaderValue, Request, Response};

use super::condition::Field;
use super::decision::{Decision, Outcome};
use super::route::{Action, HeaderOperations, Route};

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

/// `\1` back-references (RE2 and Envoy's style) in the form the `regex` crate expands: `${1}`.
pub(crate) fn rust_replacement(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

impl Decision {
    fn forward_route(&self) -> Option<&Route> {
        (self.outcome == Outcome::Forward).then_some(self.route.as_deref()?)
    }

    /// The path a rewrite gives `path`, if the route rewrites it.
    fn rewritten_path(&self, route: &Route, path: &str) -> Option<String> {
        let rewrite = route.policy.rewrite.as_ref()?;
        if let Some(uri) = &rewrite.uri {
            let uri_condition = self
                .entry
                .and_then(|e| route.matches.get(e as usize))
                .and_then(|m| {
                    m.conditions
                        .iter()
                        .find(|c| matches!(c.field, Field::Uri) && !c.invert)
                });
            let keep_from = match uri_condition {
                // A prefix match swaps the matched prefix.
                Some(c) => c.matcher.rewrite_prefix_len(),
                // No uri condition: the route's prefix is "/".
                None => Some(1),
            };
            return Some(match keep_from {
                Some(n) if n <= path.len() => format!("{uri}{}", &path[n..]),
                // Exact and regex matches swap the whole path.
                _ => uri.to_string(),
            });
        }
        if let Some(r) = &rewrite.uri_regex {
            return Some(r.re.replace_all(path, &*r.replacement).into_owned());
        }
        None
    }

    /// Applies the route's rewrite and request header operations (route level, then the chosen
    /// destination's) to a request about to be forwarded. Nothing happens for other outcomes.
    ///
    /// ```
    /// use http::Request;
    /// use tower_mesh::{Context, NeverSampler, RuleSet};
    ///
    /// let rules = RuleSet::from_yaml(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: ratings}
    /// spec:
    ///   hosts: [ratings]
    ///   http:
    ///   - match: [{uri: {prefix: /ratings}}]
    ///     rewrite: {uri: /v1/bookRatings}
    ///     headers: {request: {set: {x-route: ratings}}}
    ///     route: [{destination: {host: ratings}}]
    /// "#)?;
    /// let mut req = Request::get("/ratings/7?x=1").body(())?;
    /// let decision = rules.evaluate(&req, &Context::new().with_target("ratings"), &NeverSampler);
    /// decision.apply_request(&mut req);
    /// assert_eq!(req.uri(), "/v1/bookRatings/7?x=1");
    /// assert_eq!(req.headers()["x-route"], "ratings");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_request<B>(&self, req: &mut Request<B>) {
        let Some(route) = self.forward_route().filter(|r| r.changes_messages()) else {
            return;
        };
        let policy = &route.policy;
        let destination_headers = match (&route.action, &self.destination) {
            (Action::Forward { destinations, .. }, super::decision::DestinationRef::Route(i)) => {
                destinations.get(*i).map(|d| &d.headers)
            }
            _ => None,
        };
        // Path.
        if let Some(path) = self.rewritten_path(route, req.uri().path()) {
            let pq = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            if let Ok(pq) = PathAndQuery::try_from(pq) {
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
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
    }

    /// Applies the route's response header operations (route level, then the chosen
    /// destination's) to a response. Nothing happens when no route decided.
    pub fn apply_response<B>(&self, res: &mut Response<B>) {
        let Some(route) = self.route.as_deref() else {
            return;
        };
        apply_ops(res.headers_mut(), &route.policy.headers.response);
        if let (Action::Forward { destinations, .. }, super::decision::DestinationRef::Route(i)) =
            (&route.action, &self.destination)
            && let Some(d) = destinations.get(*i)
        {
            apply_ops(res.headers_mut(), &d.headers.response);
        }
    }

    /// Whether carrying the decision out changes the request or the response.
    pub(crate) fn has_message_changes(&self) -> bool {
        self.route.as_deref().is_some_and(Route::changes_messages)
    }

    /// Whether a layer (one that keeps bodies when `keeps_bodies`) has nothing to do but call
    /// the inner service with the request as it is, and hand back its answer as it is: a
    /// forward or pass-through with no delay, whose route (if any) is plain.
    #[inline]
    pub(crate) fn is_plain(&self, keeps_bodies: bool) -> bool {
        matches!(self.outcome, Outcome::Forward | Outcome::PassThrough)
            && self.delay.is_none()
            && self
                .route
                .as_deref()
                .is_none_or(|r| r.is_plain(keeps_bodies))
    }
}

#[cfg(test)]
mod tests {
    use super::rust_replacement;

    #[test]
    fn back_references() {
        assert_eq!(
            rust_replacement(r"/customprefix/\2/\1"),
            "/customprefix/${2}/${1}"
        );
        assert_eq!(rust_replacement("/cost$5"), "/cost$$5");
    }
}
