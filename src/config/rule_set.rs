//! [`RuleSet`]: loaded, validated, compiled rules, with the warnings the load produced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Request;

use super::LoadOptions;
use super::de::from_node;
use super::error::{Collector, DocumentRef, ErrorKind, LoadError, Warning};
use super::lower::Lowerer;
use super::lower::gateway::LoweredHttpRoute;
use super::lower::legacy::LegacyRule;
use super::lower::networking::{LoweredVirtualService, SubsetIndex};
use super::node::{Node, Value, parse_stream_within};
use super::wire;
use crate::model::{
    Context, Decision, Explanation, RankedRule, Resource, ResourceKind, RouteTable, Sampler,
    TableBuilder, VirtualServiceRoutes,
};

/// Loaded routing rules: the compiled [`RouteTable`], the warnings the load produced, the
/// documents it skipped, and the files it came from.
///
/// ```
/// use http::Request;
/// use tower_mesh::{Context, NeverSampler, Outcome, RuleSet};
///
/// let rules = RuleSet::from_yaml(r#"
/// apiVersion: config.istio.io/v1alpha2
/// kind: RouteRule
/// metadata:
///   name: helloworld-service
/// spec:
///   destination:
///     name: helloworld-service
///   precedence: 1
///   match:
///     request:
///       headers:
///         user-agent:
///           regex: ".*Chrome.*"
///   route:
///   - labels:
///       version: "v2"
/// "#)?;
///
/// let ctx = Context::new().with_host("helloworld-service");
/// let req = Request::get("/").header("user-agent", "Mozilla/5.0 Chrome/70.0").body(())?;
/// let decision = rules.evaluate(&req, &ctx, &NeverSampler);
/// assert_eq!(decision.outcome(), Outcome::Forward);
/// assert_eq!(decision.rule(), Some("helloworld-service"));
/// assert_eq!(decision.destination().unwrap().labels().get("version"), Some("v2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RuleSet {
    table: Arc<RouteTable>,
    warnings: Vec<Warning>,
    skipped: Vec<DocumentRef>,
    files: Vec<PathBuf>,
    options: LoadOptions,
    /// A digest of the texts the rules were read from.
    digest: u64,
    /// Where the texts came from a cluster: the newest `resourceVersion` among their objects.
    revision: Option<String>,
}

/// FNV-1a, 64 bits: a digest of rule texts that any implementation can recompute.
pub(crate) fn fnv1a(digest: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(digest, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// FNV-1a's starting value.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl RuleSet {
    /// Loads YAML text: one or more `---`-separated documents. JSON is accepted too.
    pub fn from_yaml(text: &str) -> Result<Self, LoadError> {
        Loader::new().text(text).load()
    }

    /// Loads JSON text (one resource per document).
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        Loader::new().text(text).load()
    }

    /// Loads several files together, as one set of rules, in order.
    pub fn from_files<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self, LoadError> {
        let mut loader = Loader::new();
        for p in paths {
            loader = loader.file(p.as_ref());
        }
        loader.load()
    }

    /// A loader, for options or a mix of texts and files.
    pub fn loader() -> Loader {
        Loader::new()
    }

    /// An empty rule set: every request passes through.
    pub fn empty() -> Self {
        RuleSet {
            table: Arc::new(RouteTable::default()),
            warnings: Vec::new(),
            skipped: Vec::new(),
            files: Vec::new(),
            options: LoadOptions::default(),
            digest: FNV_OFFSET,
            revision: None,
        }
    }

    /// The version of these rules: a digest (64-bit FNV-1a, in hexadecimal) of the texts they
    /// were read from, in order, so that replicas that loaded the same rules show the same
    /// version.
    ///
    /// ```
    /// let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http: [{route: [{destination: {host: r}}]}]\n";
    /// let a = tower_mesh::RuleSet::from_yaml(text)?;
    /// let b = tower_mesh::RuleSet::from_yaml(text)?;
    /// assert_eq!(a.version(), b.version());
    /// assert_eq!(a.version().len(), 16);
    /// assert_ne!(a.version(), tower_mesh::RuleSet::empty().version());
    /// # Ok::<(), tower_mesh::LoadError>(())
    /// ```
    ///
    /// Rules that came from a cluster's resources (feature `kube`) add `@` and the newest
    /// `resourceVersion` among the objects in force, as in `1c9d0f7e5a3b2d41@48213`.
    pub fn version(&self) -> String {
        match &self.revision {
            Some(rv) => format!("{:016x}@{rv}", self.digest),
            None => format!("{:016x}", self.digest),
        }
    }

    /// The same rules, marked as read from a cluster at `resource_version` (see
    /// [`version`](RuleSet::version)).
    #[cfg(feature = "kube")]
    pub(crate) fn with_revision(mut self, resource_version: Option<String>) -> Self {
        self.revision = resource_version;
        self
    }

    /// Loads the rules again from the files they came from, with the same options.
    pub fn reload(&self) -> Result<Self, LoadError> {
        let mut loader = Loader::new().options(self.options.clone());
        for f in &self.files {
            loader = loader.file(f);
        }
        loader.load()
    }

    /// The compiled rules.
    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }

    /// What the load found suspicious or mapped, each naming its resource.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Documents of other kinds (Service, Deployment, Gateway, ...), skipped.
    pub fn skipped(&self) -> &[DocumentRef] {
        &self.skipped
    }

    /// The files the rules were loaded from, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The options the rules were loaded with.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// Evaluates a request; see [`RouteTable::evaluate`].
    pub fn evaluate<B>(&self, req: &Request<B>, ctx: &Context, sampler: &dyn Sampler) -> Decision {
        self.table.evaluate(req, ctx, sampler)
    }

    /// Evaluates a request and writes out every step; see [`RouteTable::explain`].
    ///
    /// ```
    /// use http::Request;
    /// use tower_mesh::{Context, NeverSampler, RuleSet};
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
    ///     route:
    ///     - destination: {host: reviews}
    /// "#)?;
    /// let req = Request::get("http://reviews/").header("end-user", "ann").body(())?;
    /// let explanation = rules.explain(&req, &Context::new(), &NeverSampler);
    /// let text = explanation.to_string();
    /// assert!(text.contains(r#"[no match] header end-user exact "jason" on "ann""#), "{text}");
    /// assert!(text.ends_with("decision: not_found with status 404 (by VirtualService default/reviews)"), "{text}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain<B>(
        &self,
        req: &Request<B>,
        ctx: &Context,
        sampler: &dyn Sampler,
    ) -> Explanation {
        self.table.explain(req, ctx, sampler)
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::empty()
    }
}

enum Source {
    Text(String),
    File(PathBuf),
    /// A text with a name its errors give as their file (a cluster object, for one).
    Named(PathBuf, String),
}

/// Loads texts and files together as one set of rules.
///
/// A later document with the same kind, namespace and name replaces an earlier one, as
/// `kubectl apply` would; it keeps the earlier one's place in the load order.
///
/// ```
/// use tower_mesh::{LoadOptions, Loader};
///
/// let rules = Loader::new()
///     .options(LoadOptions::default().with_gateway_merge(true))
///     .text("apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n")
///     .load()?;
/// assert_eq!(rules.skipped().len(), 1);
/// # Ok::<(), tower_mesh::LoadError>(())
/// ```
#[derive(Default)]
pub struct Loader {
    options: LoadOptions,
    sources: Vec<Source>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("options", &self.options)
            .field("sources", &self.sources.len())
            .finish()
    }
}

enum Spec {
    RouteRule(Box<wire::legacy::RouteRule>),
    /// An HTTPRoute, with its `metadata.creationTimestamp`.
    HttpRoute(Box<wire::gateway::HttpRoute>, Option<(i64, u32)>),
    /// A GRPCRoute, with its `metadata.creationTimestamp`.
    GrpcRoute(Box<wire::gateway::GrpcRoute>, Option<(i64, u32)>),
    VirtualService(Box<wire::networking::VirtualService>),
    DestinationRule(Box<wire::networking::DestinationRule>),
}

struct Entry {
    doc: DocumentRef,
    root: Node,
    spec: Spec,
    resource: Arc<Resource>,
}

const NETWORKING_VERSIONS: [&str; 3] = [
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
];

impl Loader {
    /// A loader with default options and no input.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Sets the options.
    pub fn options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds YAML or JSON text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.sources.push(Source::Text(text.into()));
        self
    }

    /// Adds a text whose errors name `name` as their file; a text of its own, so the limits on
    /// one text apply to it alone.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn named_text(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.sources.push(Source::Named(name.into(), text.into()));
        self
    }

    /// Adds a file (YAML or JSON). It is read by [`load`](Loader::load), and again by
    /// [`RuleSet::reload`].
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::File(path.into()));
        self
    }

    /// Reads, validates and compiles everything added, as one set of rules.
    ///
    /// On failure the error lists every mistake found (see [`LoadError::errors`]): reading
    /// goes on to the next document after an error, and to the next file after a file that
    /// cannot be read or parsed.
    pub fn load(self) -> Result<RuleSet, LoadError> {
        let mut gathered = Gathered {
            errors: Collector::new(self.options.limits.max_errors),
            digest: FNV_OFFSET,
            ..Gathered::default()
        };
        let limits = &self.options.limits;
        for source in &self.sources {
            if let Err(e) = gathered.read_source(source, &self.options) {
                gathered.errors.push(e);
            }
            // Past a total, the texts after it are not read at all.
            let spent = gathered.bytes > limits.max_total_bytes
                || gathered.values >= limits.max_total_nodes;
            if gathered.errors.must_stop() || spent {
                break;
            }
        }
        build(gathered, self.options)
    }
}

/// What reading the sources gathered: the documents to lower (a later document with the same
/// kind, namespace and name replaces an earlier one), the skipped ones, and the errors.
#[derive(Default)]
struct Gathered {
    entries: Vec<Entry>,
    by_key: HashMap<(ResourceKind, String, String, bool), usize>,
    skipped: Vec<DocumentRef>,
    files: Vec<PathBuf>,
    errors: Collector,
    /// Hosts of DestinationRules that could not be read: their subsets are not reported
    /// unknown, since the error that matters is the DestinationRule's own.
    broken_hosts: Vec<(String, String)>,
    /// The digest of the texts read so far (see [`RuleSet::version`]).
    digest: u64,
    /// Bytes and values of the texts read so far, against the load's totals.
    bytes: usize,
    values: usize,
}

impl Gathered {
    /// Reads one source's documents; `Err` when the file cannot be read or parsed.
    fn read_source(&mut self, source: &Source, options: &LoadOptions) -> Result<(), LoadError> {
        let (file, text) = match source {
            Source::Text(t) => (None, std::borrow::Cow::Borrowed(t.as_str())),
            Source::Named(name, t) => (Some(name.clone()), std::borrow::Cow::Borrowed(t.as_str())),
            Source::File(p) => {
                self.files.push(p.clone());
                let text = super::file::read_text(p, options.limits.max_input_bytes)?;
                (Some(p.clone()), std::borrow::Cow::Owned(text))
            }
        };
        let limits = &options.limits;
        let in_file = |e: LoadError| match &file {
            Some(_) => e.with_document(DocumentRef {
                file: file.clone(),
                ..DocumentRef::default()
            }),
            None => e,
        };
        self.bytes = self.bytes.saturating_add(text.len());
        if self.bytes > limits.max_total_bytes {
            return Err(in_file(LoadError::new(
                ErrorKind::Limit,
                format!(
                    "the texts of this load hold more than {} bytes together \
                     (Limits::max_total_bytes)",
                    limits.max_total_bytes
                ),
            )));
        }
        // Each text, with a separator, so that moving a document between texts changes it.
        self.digest = fnv1a(fnv1a(self.digest, text.as_bytes()), &[0xff]);
        let left = limits.max_total_nodes.saturating_sub(self.values);
        let (docs, values) = match parse_stream_within(&text, limits, left) {
            Ok(parsed) => parsed,
            Err(e) => {
                if e.message().contains("Limits::max_total_nodes") {
                    self.values = limits.max_total_nodes;
                }
                return Err(in_file(e));
            }
        };
        self.values += values;
        for (i, document) in docs.into_iter().enumerate() {
            let Some(root) = document.root else { continue };
            let doc = DocumentRef {
                file: file.clone(),
                index: i + 1,
                line: document.line,
                ..DocumentRef::default()
            };
            let dr_host = destination_rule_host(&root);
            match read_document(doc, root) {
                Ok(Read::Skipped(doc)) => self.skipped.push(doc),
                Ok(Read::Entry(entry)) => self.add(entry),
                Err(e) => {
                    self.broken_hosts.extend(dr_host);
                    if self.errors.push(e) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The errors gathered, in input order (by file, then document and line), if any.
    fn finish_errors(&mut self) -> Result<(), LoadError> {
        let files = &self.files;
        self.errors.sort_by_source(|file| {
            file.map_or(0, |f| 1 + files.iter().position(|p| p == f).unwrap_or(0))
        });
        self.errors.finish()
    }

    fn add(&mut self, entry: Entry) {
        let key = (
            entry.resource.kind(),
            entry.resource.namespace().to_string(),
            entry.resource.name().to_string(),
            matches!(entry.spec, Spec::DestinationRule(_)),
        );
        match self.by_key.get(&key) {
            Some(&at) => self.entries[at] = entry,
            None => {
                self.by_key.insert(key, self.entries.len());
                self.entries.push(entry);
            }
        }
    }
}

/// For a DestinationRule document: its `spec.host` and namespace, as written.
fn destination_rule_host(root: &Node) -> Option<(String, String)> {
    if root.get_str("kind") != Some("DestinationRule") {
        return None;
    }
    let host = root.get("spec")?.get_str("host")?.to_string();
    let namespace = root.get("metadata").and_then(|m| m.get_str("namespace"));
    Some((host, namespace.unwrap_or("default").to_string()))
}

enum Read {
    Skipped(DocumentRef),
    Entry(Entry),
}

fn doc_error(
    doc: &DocumentRef,
    node: &Node,
    path: &str,
    kind: ErrorKind,
    message: String,
) -> LoadError {
    LoadError::new(kind, message)
        .with_document(doc.clone())
        .with_path(path)
        .at(node.line, node.column)
}

fn read_document(mut doc: DocumentRef, root: Node) -> Result<Read, LoadError> {
    let Value::Map(entries) = &root.value else {
        return Err(doc_error(
            &doc,
            &root,
            "",
            ErrorKind::WrongType,
            format!(
                "a document must be a mapping with apiVersion, kind, metadata and spec; found {}",
                root.describe()
            ),
        ));
    };
    let Some(kind_enum) = read_kind(&mut doc, &root)? else {
        // Named in the list of skipped documents, when it has a name.
        record_names(&mut doc, &root);
        return Ok(Read::Skipped(doc));
    };
    for (k, _) in entries {
        if let Value::Scalar { text, .. } = &k.value
            && !matches!(
                text.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            )
        {
            return Err(doc_error(
                &doc,
                k,
                text,
                ErrorKind::UnknownField,
                format!(
                    "`{text}` is not a field here{}; allowed: apiVersion, kind, metadata, spec, status",
                    super::suggest::did_you_mean(
                        text,
                        &["apiVersion", "kind", "metadata", "spec", "status"]
                    )
                ),
            ));
        }
    }
    let name = read_metadata(&mut doc, &root)?;
    let Some(spec_node) = root.get("spec") else {
        return Err(doc_error(
            &doc,
            &root,
            "spec",
            ErrorKind::MissingField,
            "the required field `spec` is absent".into(),
        ));
    };
    let spec = read_spec(kind_enum, &doc, &root, spec_node)?;
    let precedence = match &spec {
        Spec::RouteRule(r) => Some(r.precedence.unwrap_or(0)),
        _ => None,
    };
    let namespace = doc.namespace.as_deref().unwrap_or("default");
    let resource = Arc::new(Resource::new(kind_enum, namespace, name, precedence));
    Ok(Read::Entry(Entry {
        doc,
        root,
        spec,
        resource,
    }))
}

/// The document's `spec`, read into the wire type of its kind.
fn read_spec(
    kind: ResourceKind,
    doc: &DocumentRef,
    root: &Node,
    spec_node: &Node,
) -> Result<Spec, LoadError> {
    let with_doc = |e: LoadError| e.with_document(doc.clone());
    Ok(match kind {
        ResourceKind::RouteRule => {
            Spec::RouteRule(Box::new(from_node(spec_node, "spec").map_err(with_doc)?))
        }
        ResourceKind::HttpRoute => {
            let created = creation_timestamp(doc, root)?;
            Spec::HttpRoute(
                Box::new(from_node(spec_node, "spec").map_err(with_doc)?),
                created,
            )
        }
        ResourceKind::GrpcRoute => {
            let created = creation_timestamp(doc, root)?;
            Spec::GrpcRoute(
                Box::new(from_node(spec_node, "spec").map_err(with_doc)?),
                created,
            )
        }
        ResourceKind::VirtualService => {
            Spec::VirtualService(Box::new(from_node(spec_node, "spec").map_err(with_doc)?))
        }
        ResourceKind::DestinationRule => {
            Spec::DestinationRule(Box::new(from_node(spec_node, "spec").map_err(with_doc)?))
        }
    })
}

/// A top-level string field of a document (`kind`, `apiVersion`), if present and not null.
fn top_string(doc: &DocumentRef, root: &Node, name: &str) -> Result<Option<String>, LoadError> {
    match root.get(name) {
        None => Ok(None),
        Some(n) => match &n.value {
            Value::Scalar { text, .. } if !n.is_null() => Ok(Some(text.clone())),
            _ if n.is_null() => Ok(None),
            _ => Err(doc_error(
                doc,
                n,
                name,
                ErrorKind::WrongType,
                format!("expected a string, found {}", n.describe()),
            )),
        },
    }
}

/// The document's kind, checked against its `apiVersion`; `None` for a kind that is not
/// routing configuration (skipped). Records the kind in `doc`.
fn read_kind(doc: &mut DocumentRef, root: &Node) -> Result<Option<ResourceKind>, LoadError> {
    let Some(kind) = top_string(doc, root, "kind")? else {
        return Err(doc_error(
            doc,
            root,
            "kind",
            ErrorKind::MissingField,
            "the required field `kind` is absent".into(),
        ));
    };
    let api_version = top_string(doc, root, "apiVersion")?.unwrap_or_default();
    doc.kind = Some(kind.clone());
    let (kind_enum, allowed): (_, &[&str]) = match kind.as_str() {
        "RouteRule" => (ResourceKind::RouteRule, &["config.istio.io/v1alpha2"]),
        "VirtualService" => (ResourceKind::VirtualService, &NETWORKING_VERSIONS),
        "DestinationRule" => (ResourceKind::DestinationRule, &NETWORKING_VERSIONS),
        "HTTPRoute" if api_version.starts_with("gateway.networking.k8s.io/") => (
            ResourceKind::HttpRoute,
            &[
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1beta1",
            ],
        ),
        "GRPCRoute" if api_version.starts_with("gateway.networking.k8s.io/") => (
            ResourceKind::GrpcRoute,
            &[
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1alpha2",
            ],
        ),
        _ => return unknown_kind(doc, root, &kind, &api_version).map(|()| None),
    };
    if api_version.is_empty() {
        return Err(doc_error(
            doc,
            root,
            "apiVersion",
            ErrorKind::MissingField,
            "the required field `apiVersion` is absent".into(),
        ));
    }
    if !allowed.contains(&api_version.as_str()) {
        let message = match kind_enum {
            ResourceKind::RouteRule => format!(
                "`{api_version}`: a RouteRule's apiVersion must be config.istio.io/v1alpha2"
            ),
            _ => format!("`{api_version}`: allowed: {}", allowed.join(", ")),
        };
        return Err(doc_error(
            doc,
            root,
            "apiVersion",
            ErrorKind::InvalidValue,
            message,
        ));
    }
    Ok(Some(kind_enum))
}

/// The kinds of the API groups tower-mesh reads, routing or not: a kind of one of these groups
/// that is not in its list is a mistake (`VirtualServices`), not another tool's resource.
const KNOWN_KINDS: [(&str, &[&str]); 3] = [
    (
        "networking.istio.io",
        &[
            "VirtualService",
            "DestinationRule",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
            "WorkloadEntry",
            "WorkloadGroup",
            "EnvoyFilter",
            "ProxyConfig",
        ],
    ),
    (
        "config.istio.io",
        &[
            "RouteRule",
            "DestinationPolicy",
            "EgressRule",
            "IngressRule",
            "attributemanifest",
            "rule",
            "handler",
            "instance",
            "template",
            "adapter",
            "HTTPAPISpec",
            "HTTPAPISpecBinding",
            "QuotaSpec",
            "QuotaSpecBinding",
            "metric",
            "logentry",
            "tracespan",
            "quota",
            "listentry",
            "checknothing",
            "reportnothing",
            "authorization",
            "apikey",
            "edge",
            "kubernetes",
            "kubernetesenv",
            "memquota",
            "redisquota",
            "prometheus",
            "stdio",
            "denier",
            "listchecker",
            "fluentd",
            "statsd",
            "dogstatsd",
            "stackdriver",
            "opa",
            "rbac",
            "circonus",
            "solarwinds",
            "cloudwatch",
            "zipkin",
            "noop",
            "bypass",
            "signalfx",
            "servicecontrol",
            "servicecontrolreport",
        ],
    ),
    (
        "gateway.networking.k8s.io",
        &[
            "HTTPRoute",
            "GRPCRoute",
            "Gateway",
            "GatewayClass",
            "ReferenceGrant",
            "TCPRoute",
            "TLSRoute",
            "UDPRoute",
            "BackendTLSPolicy",
            "BackendLBPolicy",
            "ListenerSet",
            "XListenerSet",
        ],
    ),
];

/// Whether a kind that is not routing configuration may be skipped: it may unless its
/// `apiVersion` is in a group tower-mesh reads and the group has no such kind.
fn unknown_kind(
    doc: &DocumentRef,
    root: &Node,
    kind: &str,
    api_version: &str,
) -> Result<(), LoadError> {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let Some((_, kinds)) = KNOWN_KINDS.iter().find(|(g, _)| *g == group) else {
        return Ok(());
    };
    if kinds.contains(&kind) {
        return Ok(());
    }
    let node = root.get("kind").unwrap_or(root);
    let hint = super::suggest::did_you_mean(kind, kinds);
    Err(doc_error(
        doc,
        node,
        "kind",
        ErrorKind::InvalidValue,
        format!(
            "`{kind}` is not a kind of {group}{hint}; its kinds are: {}",
            kinds.join(", ")
        ),
    )
    .with_value(kind))
}

/// `metadata.creationTimestamp`, when given: an RFC 3339 date-time.
fn creation_timestamp(doc: &DocumentRef, root: &Node) -> Result<Option<(i64, u32)>, LoadError> {
    let Some(node) = root
        .get("metadata")
        .and_then(|m| m.get("creationTimestamp"))
    else {
        return Ok(None);
    };
    if node.is_null() {
        return Ok(None);
    }
    let text = match &node.value {
        Value::Scalar { text, .. } => text.as_str(),
        _ => "",
    };
    match super::lower::gateway::rfc3339(text) {
        Some(t) => Ok(Some(t)),
        None => Err(doc_error(
            doc,
            node,
            "metadata.creationTimestamp",
            ErrorKind::InvalidValue,
            format!("`{text}` is not an RFC 3339 date-time such as 2024-03-01T10:00:00Z"),
        )
        .with_value(text)),
    }
}

/// Records `metadata.name` and `metadata.namespace` (when they are strings) in `doc`.
fn record_names(doc: &mut DocumentRef, root: &Node) {
    let meta = root.get("metadata");
    let meta_str = |key: &str| meta.and_then(|m| m.get_str(key)).map(str::to_string);
    doc.name = meta_str("name");
    doc.namespace = meta_str("namespace");
}

/// `metadata.name` (required) and `metadata.namespace`, recorded in `doc`; neither may hold a
/// NUL character.
fn read_metadata(doc: &mut DocumentRef, root: &Node) -> Result<String, LoadError> {
    let meta = root.get("metadata");
    for key in ["name", "namespace"] {
        if let Some(node) = meta.and_then(|m| m.get(key))
            && matches!(&node.value, Value::Scalar { text, .. } if text.contains('\0'))
        {
            let message = super::de::nul_error().message().to_string();
            let path = format!("metadata.{key}");
            return Err(doc_error(
                doc,
                node,
                &path,
                ErrorKind::InvalidValue,
                message,
            ));
        }
    }
    record_names(doc, root);
    match doc.name.clone().filter(|n| !n.is_empty()) {
        Some(name) => Ok(name),
        None => Err(doc_error(
            doc,
            meta.unwrap_or(root),
            "metadata.name",
            ErrorKind::MissingField,
            "the required field `metadata.name` is absent".into(),
        )),
    }
}

fn doc_warning(doc: &DocumentRef, message: String) -> Warning {
    Warning {
        document: doc.clone(),
        path: None,
        line: Some(doc.line),
        message,
    }
}

fn gateways_overlap(a: &[Box<str>], b: &[Box<str>]) -> bool {
    let norm = |g: &[Box<str>]| -> Vec<String> {
        if g.is_empty() {
            vec!["mesh".to_string()]
        } else {
            g.iter()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                .collect()
        }
    };
    let (a, b) = (norm(a), norm(b));
    a.iter().any(|x| b.contains(x))
}

/// Counts the RouteRules' routes against the limits; an error names the rule past them.
fn count_routes(
    legacy: &[(DocumentRef, LegacyRule)],
    size: &mut super::lower::delegate::Size<'_>,
) -> Result<(), LoadError> {
    for (doc, rule) in legacy {
        size.add(rule.route.matches().len())
            .map_err(|e| e.with_document(doc.clone()))?;
    }
    Ok(())
}

fn build(mut gathered: Gathered, options: LoadOptions) -> Result<RuleSet, LoadError> {
    let mut warnings = Vec::new();
    let entries = std::mem::take(&mut gathered.entries);
    let lowered = lower_all(entries, &options, &mut warnings, &mut gathered);
    if let Err(e) = gathered.finish_errors() {
        return Err(e.with_warnings(warnings));
    }
    let Gathered {
        skipped,
        files,
        digest,
        ..
    } = gathered;
    let Lowered {
        legacy,
        mut services,
        http_routes,
        policies,
    } = lowered;
    let mut size = super::lower::delegate::Size::new(&options.limits);
    let sized = count_routes(&legacy, &mut size)
        .and_then(|()| super::lower::delegate::expand(&mut services, &mut warnings, &mut size));
    if let Err(e) = sized {
        return Err(e.with_warnings(warnings));
    }

    let mut builder = TableBuilder::new();
    policies
        .into_iter()
        .for_each(|(host, policy)| builder.add_destination_policy(&host, policy));
    let vs_hosts = group_virtual_services(services, &options, &mut warnings);
    let claimed: HashMap<&str, &Arc<VirtualServiceRoutes>> = vs_hosts
        .iter()
        .map(|h| (h.canonical.as_str(), &h.services[0]))
        .collect();
    let rr_hosts = group_route_rules(legacy, &claimed, &mut warnings);
    drop(claimed);
    let mut legacy_hosts: Vec<(String, DocumentRef)> = Vec::new();
    for host in rr_hosts {
        let first = host.rules[0].tag.clone();
        legacy_hosts.push((host.canonical.clone(), first.clone()));
        let added = builder.add_route_rules(&host.names, host.service, host.rules);
        for s in added.shadowed {
            warnings.push(doc_warning(
                &s.tag,
                format!("RouteRule {} is unreachable: it is shadowed by the catch-all rule {} (precedence {}), which comes first (higher precedence, or equal precedence and a smaller name)", s.key, s.by, s.by_precedence),
            ));
        }
        warn_taken(&mut warnings, &first, added.taken);
    }
    let mut other_hosts: HashMap<String, DocumentRef> = HashMap::new();
    for host in vs_hosts {
        other_hosts
            .entry(host.canonical.clone())
            .or_insert_with(|| host.doc.clone());
        let taken = builder.add_virtual_services(&host.names, host.services, options.gateway_merge);
        warn_taken(&mut warnings, &host.doc, taken);
    }
    other_hosts.extend(legacy_hosts);
    let attached = super::attach::add_http_routes(
        &mut builder,
        http_routes,
        &other_hosts,
        &mut warnings,
        &mut size,
    );
    if let Err(e) = attached {
        return Err(e.with_warnings(warnings));
    }
    Ok(RuleSet {
        table: Arc::new(builder.finish(size.routes)),
        warnings,
        skipped,
        files,
        options,
        digest,
        revision: None,
    })
}

/// Lowers every document: DestinationRules first (VirtualServices read their subsets), then
/// RouteRules and VirtualServices in load order.
fn lower_all(
    entries: Vec<Entry>,
    options: &LoadOptions,
    warnings: &mut Vec<Warning>,
    gathered: &mut Gathered,
) -> Lowered {
    let regex_bytes = std::cell::Cell::new(0);
    let mut subsets = SubsetIndex::default();
    for (host, namespace) in &gathered.broken_hosts {
        subsets.mark_broken(host, namespace);
    }
    let (drs, others): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| matches!(e.spec, Spec::DestinationRule(_)));
    let mut lowered = Lowered {
        legacy: Vec::new(),
        services: Vec::new(),
        http_routes: Vec::new(),
        policies: Vec::new(),
    };
    for e in drs.into_iter().chain(others) {
        let Entry {
            doc,
            root,
            spec,
            resource,
        } = e;
        let mut lw = Lowerer {
            doc: &doc,
            root: &root,
            options,
            warnings,
            regex_bytes: &regex_bytes,
        };
        let failed = lower_entry(
            &mut lw,
            doc.clone(),
            spec,
            resource,
            &mut subsets,
            &mut lowered,
        );
        if let Some(err) = failed
            && gathered.errors.push(err)
        {
            break;
        }
    }
    lowered.policies = subsets
        .hosts
        .iter()
        .map(|(host, s)| (host.clone(), s.policy.clone()))
        .collect();
    lowered
}

/// Lowers one document into `lowered` (DestinationRules into `subsets`); the error, if any.
fn lower_entry(
    lw: &mut Lowerer<'_>,
    doc: DocumentRef,
    spec: Spec,
    resource: Arc<Resource>,
    subsets: &mut SubsetIndex,
    lowered: &mut Lowered,
) -> Option<LoadError> {
    match spec {
        Spec::DestinationRule(spec) => {
            let host = spec.host.clone().unwrap_or_default();
            let ns = resource.namespace().to_string();
            let r = lw.destination_rule(resource, *spec, subsets);
            if r.is_err() {
                subsets.mark_broken(&host, &ns);
            }
            r.err()
        }
        Spec::RouteRule(spec) => lw
            .route_rule(resource, *spec)
            .map(|rule| lowered.legacy.push((doc, rule)))
            .err(),
        Spec::VirtualService(spec) => lw
            .virtual_service(resource, *spec, subsets)
            .map(|vs| lowered.services.push((doc, vs)))
            .err(),
        Spec::HttpRoute(spec, created) => lw
            .gateway_http_route(resource, *spec, created)
            .map(|route| lowered.http_routes.push((doc, route)))
            .err(),
        Spec::GrpcRoute(spec, created) => lw
            .gateway_grpc_route(resource, *spec, created)
            .map(|route| lowered.http_routes.push((doc, route)))
            .err(),
    }
}

/// Every RouteRule and VirtualService of a load, lowered, each with its document.
struct Lowered {
    legacy: Vec<(DocumentRef, LegacyRule)>,
    services: Vec<(DocumentRef, LoweredVirtualService)>,
    http_routes: Vec<(DocumentRef, LoweredHttpRoute)>,
    /// The DestinationRule in force for each service (by canonical host).
    policies: Vec<(String, Arc<crate::model::DestinationPolicy>)>,
}

/// The VirtualServices of one host, in load order, with the names the host answers for.
struct VirtualHost {
    canonical: String,
    names: Vec<String>,
    services: Vec<Arc<VirtualServiceRoutes>>,
    /// The first VirtualService's document.
    doc: DocumentRef,
}

/// Groups VirtualServices by canonical host, warning where a later one is ignored for a host
/// (without gateway merge) because an earlier one applies to the same gateways.
fn group_virtual_services(
    services: Vec<(DocumentRef, LoweredVirtualService)>,
    options: &LoadOptions,
    warnings: &mut Vec<Warning>,
) -> Vec<VirtualHost> {
    let mut hosts: Vec<VirtualHost> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, vs) in services {
        let routes = Arc::new(VirtualServiceRoutes::new(
            vs.resource.clone(),
            vs.gateways,
            // Not collected in place: that would keep the routes' buffer, 80 times larger.
            vs.routes
                .into_iter()
                .map(Arc::new)
                .collect::<Vec<_>>()
                .into_boxed_slice()
                .into_vec(),
        ));
        for host in vs.hosts {
            let Some(&at) = by_host.get(&host.canonical) else {
                by_host.insert(host.canonical.clone(), hosts.len());
                hosts.push(VirtualHost {
                    canonical: host.canonical,
                    names: host.names,
                    services: vec![routes.clone()],
                    doc: doc.clone(),
                });
                continue;
            };
            let earlier = &hosts[at].services;
            if let Some(first) = earlier
                .iter()
                .find(|f| gateways_overlap(f.gateways(), routes.gateways()))
                && !options.gateway_merge
            {
                warnings.push(doc_warning(
                    &doc,
                    format!(
                        "several VirtualServices for host {}: {} was loaded first, so this one is ignored where both apply (Istio IST0109); set gateway merge to combine them",
                        host.names[0], first.resource()
                    ),
                ));
            }
            hosts[at].services.push(routes.clone());
        }
    }
    hosts
}

/// The RouteRules of one service, with the names it answers for.
struct LegacyHost {
    canonical: String,
    names: Vec<String>,
    service: Arc<str>,
    rules: Vec<RankedRule<DocumentRef>>,
}

/// Groups RouteRules by canonical host, in load order; a rule for a host that a VirtualService
/// covers is dropped with a warning (VirtualServices take the host).
fn group_route_rules(
    legacy: Vec<(DocumentRef, LegacyRule)>,
    claimed: &HashMap<&str, &Arc<VirtualServiceRoutes>>,
    warnings: &mut Vec<Warning>,
) -> Vec<LegacyHost> {
    let mut hosts: Vec<LegacyHost> = Vec::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (doc, rule) in legacy {
        if let Some(vs) = claimed.get(rule.host.canonical.as_str()) {
            warnings.push(doc_warning(
                &doc,
                format!(
                    "ignored: {} also covers host {}, and VirtualServices take the host",
                    vs.resource(),
                    rule.display_host
                ),
            ));
            continue;
        }
        let ranked = RankedRule {
            tag: doc,
            precedence: rule.precedence,
            key: rule.key,
            route: rule.route,
        };
        match by_host.get(&rule.host.canonical) {
            Some(&at) => hosts[at].rules.push(ranked),
            None => {
                by_host.insert(rule.host.canonical.clone(), hosts.len());
                hosts.push(LegacyHost {
                    canonical: rule.host.canonical.clone(),
                    names: rule.host.names,
                    service: rule.display_host,
                    rules: vec![ranked],
                });
            }
        }
    }
    hosts
}

/// A warning for each host name that another service's rules had claimed first.
fn warn_taken(warnings: &mut Vec<Warning>, doc: &DocumentRef, taken: Vec<String>) {
    for name in taken {
        warnings.push(doc_warning(
            doc,
            format!(
                "host name {name} already belongs to another service's rules; those are used for it"
            ),
        ));
    }
}
