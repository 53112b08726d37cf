//! Structured random configurations for fuzzing: Istio resources built from `arbitrary` values
//! and written out as YAML. Shared by the `load_structured` fuzz target and the proptest
//! version in `integration/tests/fuzz_props.rs`.

#![allow(dead_code)]

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug)]
pub(crate) struct Config {
    pub(crate) resources: Vec<Resource>,
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Resource {
    VirtualService(VirtualService),
    DestinationRule(DestinationRule),
    RouteRule(RouteRule),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Host {
    Svc,
    Reviews,
    Wildcard,
    Star,
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) struct VirtualService {
    pub(crate) name: u8,
    pub(crate) version: u8,
    pub(crate) hosts: Vec<Host>,
    pub(crate) gateways: Vec<String>,
    pub(crate) http: Vec<HttpRoute>,
}

#[derive(Arbitrary, Debug)]
pub(crate) struct HttpRoute {
    pub(crate) name: Option<String>,
    pub(crate) matches: Vec<Match>,
    pub(crate) destinations: Vec<(Host, Option<String>, i32)>,
    pub(crate) fault: Option<Fault>,
    pub(crate) redirect: Option<(String, u16)>,
    pub(crate) direct: Option<(u16, String)>,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) retries: Option<(i32, String)>,
    pub(crate) headers: Vec<(String, String)>,
}

#[derive(Arbitrary, Debug)]
pub(crate) struct Match {
    pub(crate) uri: Option<StringMatch>,
    pub(crate) method: Option<StringMatch>,
    pub(crate) headers: Vec<(String, StringMatch)>,
    pub(crate) without_headers: Vec<(String, StringMatch)>,
    pub(crate) query: Vec<(String, StringMatch)>,
    pub(crate) ignore_uri_case: bool,
    pub(crate) port: Option<u32>,
    pub(crate) source_labels: Vec<(String, String)>,
    pub(crate) gateways: Vec<String>,
}

#[derive(Arbitrary, Debug)]
pub(crate) enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Pattern),
    Present,
    Bare(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Pattern {
    Known(u8),
    Free(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) struct Fault {
    pub(crate) delay: Option<(f64, u32)>,
    pub(crate) abort: Option<(f64, i32)>,
    pub(crate) grpc: Option<String>,
}

#[derive(Arbitrary, Debug)]
pub(crate) struct DestinationRule {
    pub(crate) host: Host,
    pub(crate) subsets: Vec<(String, Vec<(String, String)>)>,
}

#[derive(Arbitrary, Debug)]
pub(crate) struct RouteRule {
    pub(crate) name: u8,
    pub(crate) precedence: i32,
    pub(crate) destination: Host,
    pub(crate) headers: Vec<(String, StringMatch)>,
    pub(crate) routes: Vec<(Vec<(String, String)>, i32)>,
    pub(crate) abort: Option<(f32, i32)>,
    pub(crate) delay: Option<(f32, u32)>,
}

const PATTERNS: [&str; 8] = [
    ".*foo.*",
    "foo.*",
    ".*foo",
    "tenant-[0-9]+-7",
    "(?i)abc",
    "a{1000}{1000}",
    "(",
    "*",
];

/// A YAML double-quoted string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn host(h: &Host) -> String {
    match h {
        Host::Svc => q("svc"),
        Host::Reviews => q("reviews"),
        Host::Wildcard => q("*.example.com"),
        Host::Star => q("*"),
        Host::Other(s) => q(s),
    }
}

fn sm(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(v) => format!("{{exact: {}}}", q(v)),
        StringMatch::Prefix(v) => format!("{{prefix: {}}}", q(v)),
        StringMatch::Regex(Pattern::Known(i)) => {
            format!("{{regex: {}}}", q(PATTERNS[*i as usize % PATTERNS.len()]))
        }
        StringMatch::Regex(Pattern::Free(p)) => format!("{{regex: {}}}", q(p)),
        StringMatch::Present => "{}".into(),
        StringMatch::Bare(v) => q(v),
    }
}

fn map(entries: &[(String, StringMatch)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}: {}", q(k), sm(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn labels(entries: &[(String, String)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}: {}", q(k), q(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

impl Config {
    pub(crate) fn to_yaml(&self) -> String {
        let mut docs = Vec::new();
        for r in &self.resources {
            docs.push(match r {
                Resource::VirtualService(vs) => vs.to_yaml(),
                Resource::DestinationRule(dr) => dr.to_yaml(),
                Resource::RouteRule(rr) => rr.to_yaml(),
            });
        }
        docs.join("---\n")
    }
}

impl VirtualService {
    fn to_yaml(&self) -> String {
        let version = ["v1", "v1beta1", "v1alpha3"][self.version as usize % 3];
        let hosts: Vec<String> = self.hosts.iter().map(host).collect();
        let mut out = format!(
            "apiVersion: networking.istio.io/{version}\nkind: VirtualService\nmetadata: {{name: vs{}}}\nspec:\n  hosts: [{}]\n",
            self.name % 4,
            hosts.join(", ")
        );
        if !self.gateways.is_empty() {
            let g: Vec<String> = self.gateways.iter().map(|g| q(g)).collect();
            out.push_str(&format!("  gateways: [{}]\n", g.join(", ")));
        }
        out.push_str("  http:\n");
        for r in &self.http {
            out.push_str(&r.to_yaml());
        }
        out
    }
}

impl HttpRoute {
    fn to_yaml(&self) -> String {
        let mut fields = Vec::new();
        if let Some(n) = &self.name {
            fields.push(format!("name: {}", q(n)));
        }
        if !self.matches.is_empty() {
            let m: Vec<String> = self.matches.iter().map(Match::to_yaml).collect();
            fields.push(format!("match: [{}]", m.join(", ")));
        }
        if !self.destinations.is_empty() {
            let d: Vec<String> = self
                .destinations
                .iter()
                .map(|(h, subset, w)| match subset {
                    Some(s) => format!(
                        "{{destination: {{host: {}, subset: {}}}, weight: {w}}}",
                        host(h),
                        q(s)
                    ),
                    None => format!("{{destination: {{host: {}}}, weight: {w}}}", host(h)),
                })
                .collect();
            fields.push(format!("route: [{}]", d.join(", ")));
        }
        if let Some(f) = &self.fault {
            let mut parts = Vec::new();
            if let Some((pct, ms)) = f.delay {
                parts.push(format!(
                    "delay: {{fixedDelay: {}ms, percentage: {{value: {pct}}}}}",
                    ms
                ));
            }
            if let Some((pct, status)) = f.abort {
                parts.push(format!(
                    "abort: {{httpStatus: {status}, percentage: {{value: {pct}}}}}"
                ));
            }
            if let Some(g) = &f.grpc {
                parts.push(format!("abort: {{grpcStatus: {}}}", q(g)));
            }
            fields.push(format!("fault: {{{}}}", parts.join(", ")));
        }
        if let Some((uri, code)) = &self.redirect {
            fields.push(format!(
                "redirect: {{uri: {}, redirectCode: {code}}}",
                q(uri)
            ));
        }
        if let Some((status, body)) = &self.direct {
            fields.push(format!(
                "directResponse: {{status: {status}, body: {{string: {}}}}}",
                q(body)
            ));
        }
        if let Some(ms) = self.timeout_ms {
            fields.push(format!("timeout: {ms}ms"));
        }
        if let Some((attempts, on)) = &self.retries {
            fields.push(format!(
                "retries: {{attempts: {attempts}, retryOn: {}}}",
                q(on)
            ));
        }
        if !self.headers.is_empty() {
            fields.push(format!(
                "headers: {{request: {{set: {}}}}}",
                labels(&self.headers)
            ));
        }
        format!("  - {{{}}}\n", fields.join(", "))
    }
}

impl Match {
    fn to_yaml(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.uri {
            parts.push(format!("uri: {}", sm(u)));
        }
        if let Some(m) = &self.method {
            parts.push(format!("method: {}", sm(m)));
        }
        if !self.headers.is_empty() {
            parts.push(format!("headers: {}", map(&self.headers)));
        }
        if !self.without_headers.is_empty() {
            parts.push(format!("withoutHeaders: {}", map(&self.without_headers)));
        }
        if !self.query.is_empty() {
            parts.push(format!("queryParams: {}", map(&self.query)));
        }
        if self.ignore_uri_case {
            parts.push("ignoreUriCase: true".into());
        }
        if let Some(p) = self.port {
            parts.push(format!("port: {p}"));
        }
        if !self.source_labels.is_empty() {
            parts.push(format!("sourceLabels: {}", labels(&self.source_labels)));
        }
        if !self.gateways.is_empty() {
            let g: Vec<String> = self.gateways.iter().map(|g| q(g)).collect();
            parts.push(format!("gateways: [{}]", g.join(", ")));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

impl DestinationRule {
    fn to_yaml(&self) -> String {
        let subsets: Vec<String> = self
            .subsets
            .iter()
            .map(|(name, l)| format!("{{name: {}, labels: {}}}", q(name), labels(l)))
            .collect();
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr}}\nspec:\n  host: {}\n  subsets: [{}]\n",
            host(&self.host),
            subsets.join(", ")
        )
    }
}

impl RouteRule {
    fn to_yaml(&self) -> String {
        let mut out = format!(
            "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {{name: rr{}}}\nspec:\n  destination: {{name: {}}}\n  precedence: {}\n",
            self.name % 4,
            host(&self.destination),
            self.precedence
        );
        if !self.headers.is_empty() {
            out.push_str(&format!(
                "  match: {{request: {{headers: {}}}}}\n",
                map(&self.headers)
            ));
        }
        if !self.routes.is_empty() {
            let r: Vec<String> = self
                .routes
                .iter()
                .map(|(l, w)| format!("{{labels: {}, weight: {w}}}", labels(l)))
                .collect();
            out.push_str(&format!("  route: [{}]\n", r.join(", ")));
        }
        let mut fault = Vec::new();
        if let Some((pct, status)) = self.abort {
            fault.push(format!("abort: {{percent: {pct}, httpStatus: {status}}}"));
        }
        if let Some((pct, ms)) = self.delay {
            fault.push(format!("delay: {{percent: {pct}, fixedDelay: {ms}ms}}"));
        }
        if !fault.is_empty() {
            out.push_str(&format!("  httpFault: {{{}}}\n", fault.join(", ")));
        }
        out
    }
}
