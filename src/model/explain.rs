//! `explain`: the evaluation of one request written out, rule by rule and condition by
//! condition.

use std::fmt;

use super::decision::Decision;

/// How one line of an explanation came out.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
/// use tower_mesh::Verdict;
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
/// let explanation = rules.explain(&jason, &ctx, &NeverSampler);
/// assert!(explanation.lines().iter().any(|l| l.verdict == Verdict::Matched));
/// assert_eq!(explanation.decision().route_name(), Some("jason"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A rule, route or condition that matched.
    Matched,
    /// One that did not.
    NotMatched,
    /// One that does not exist for this context (gateway, caller, port) or was not reached.
    Skipped,
    /// Context: which host, which table, which draw.
    Info,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Matched => "[match]",
            Verdict::NotMatched => "[no match]",
            Verdict::Skipped => "[skipped]",
            Verdict::Info => "",
        }
    }
}

/// One line of an explanation.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Caller, Context, NeverSampler, RuleSet};
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
/// let explanation = rules.explain(&jason, &ctx, &NeverSampler);
/// let first = &explanation.lines()[0];
/// assert_eq!(first.depth, 0);
/// assert!(first.text.contains("reviews"), "{}", first.text);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainLine {
    /// Nesting: 0 for the host, 1 for a rule or route, 2 for a match entry, 3 for a condition.
    pub depth: usize,
    /// How it came out.
    pub verdict: Verdict,
    /// What was tested, in words.
    pub text: String,
}

/// The evaluation of one request, step by step, and its decision.
///
/// Print it to read it; use [`lines`](Explanation::lines) to assert on it.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, RuleSet, Verdict};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: networking.istio.io/v1
/// kind: DestinationRule
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   host: reviews
///   subsets:
///   - {name: v2, labels: {version: v2}}
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews, namespace: shop}
/// spec:
///   hosts: [reviews]
///   http:
///   - name: jason
///     match: [{headers: {end-user: {exact: jason}}}]
///     fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
///     route: [{destination: {host: reviews, subset: v2}}]
///   - name: others
///     match: [{uri: {prefix: /api}}]
///     route: [{destination: {host: reviews}}]
/// "#)?;
/// let req = Request::get("/api").body(())?;
/// let explanation = rules.explain(&req, &Context::new().with_host("reviews"), &NeverSampler);
/// assert_eq!(explanation.decision().route_name(), Some("others"));
/// let missed: Vec<&str> = explanation.lines().iter()
///     .filter(|l| l.verdict == Verdict::NotMatched)
///     .map(|l| l.text.as_str())
///     .collect();
/// assert!(missed.iter().any(|t| t.contains("end-user")), "{missed:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Explanation {
    pub(super) lines: Vec<ExplainLine>,
    pub(super) decision: Decision,
}

impl Explanation {
    /// The steps in evaluation order.
    pub fn lines(&self) -> &[ExplainLine] {
        &self.lines
    }

    /// The decision (the same as `evaluate` gives with the same sampler state).
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let indent = "  ".repeat(line.depth);
            let mark = line.verdict.mark();
            if mark.is_empty() {
                writeln!(f, "{indent}{}", line.text)?;
            } else {
                writeln!(f, "{indent}{mark} {}", line.text)?;
            }
        }
        write!(f, "decision: {}", self.decision)
    }
}

/// Receives the steps of an evaluation. The evaluator is generic over it, so the plain
/// `evaluate` path (with [`NoTrace`]) builds no text at all.
pub(super) trait Tracer {
    const ON: bool;
    fn push(&mut self, depth: usize, verdict: Verdict, text: String);

    /// Writes a line when tracing; `text` is not even built otherwise.
    #[inline(always)]
    fn line(&mut self, depth: usize, verdict: Verdict, text: impl FnOnce() -> String) {
        if Self::ON {
            self.push(depth, verdict, text());
        }
    }
}

pub(super) struct NoTrace;

impl Tracer for NoTrace {
    const ON: bool = false;
    #[inline]
    fn push(&mut self, _: usize, _: Verdict, _: String) {}
}

#[derive(Default)]
pub(super) struct Recorder {
    pub(super) lines: Vec<ExplainLine>,
}

impl Tracer for Recorder {
    const ON: bool = true;
    fn push(&mut self, depth: usize, verdict: Verdict, text: String) {
        self.lines.push(ExplainLine {
            depth,
            verdict,
            text,
        });
    }
}

/// A value as it appears in an explanation: quoted, with invalid UTF-8 escaped, shortened.
pub(super) fn show_value(value: Option<&[u8]>) -> String {
    match value {
        None => "(absent)".to_string(),
        Some(v) => {
            let text = String::from_utf8_lossy(v);
            let mut shown: String = text.chars().take(120).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
    }
}
