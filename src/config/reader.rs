//! Reading rule sources: texts and files into documents, each document checked for its kind,
//! `apiVersion` and metadata and read into the wire type of its kind. One document at a time;
//! what spans documents is the assembler's (`assemble.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::LoadOptions;
use super::de::from_node;
use super::error::{Collector, DocumentRef, ErrorKind, LoadError};
use super::node::{Node, Value, parse_stream_within};
use super::wire;
use crate::model::{Resource, ResourceKind};

/// FNV-1a, 64 bits: a digest of rule texts that any implementation can recompute.
pub(crate) fn fnv1a(digest: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(digest, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// FNV-1a's starting value.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

pub(super) enum Source {
    Text(String),
    File(PathBuf),
}

pub(super) enum Spec {
    RouteRule(Box<wire::legacy::RouteRule>),
    /// An HTTPRoute, with its `metadata.creationTimestamp`.
    HttpRoute(Box<wire::gateway::HttpRoute>, Option<(i64, u32)>),
    /// A GRPCRoute, with its `metadata.creationTimestamp`.
    GrpcRoute(Box<wire::gateway::GrpcRoute>, Option<(i64, u32)>),
    VirtualService(Box<wire::networking::VirtualService>),
    DestinationRule(Box<wire::networking::DestinationRule>),
}

pub(super) struct Entry {
    pub(super) doc: DocumentRef,
    pub(super) root: Node,
    pub(super) spec: Spec,
    pub(super) resource: Arc<Resource>,
}

const NETWORKING_VERSIONS: [&str; 3] = [
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
];

/// What reading the sources gathered: the documents to lower (each, also a second one of a
/// kind, namespace and name, which is an error), the skipped ones, and the errors.
#[derive(Default)]
pub(super) struct Gathered {
    pub(super) entries: Vec<Entry>,
    pub(super) by_key: HashMap<(ResourceKind, String, String, bool), usize>,
    pub(super) skipped: Vec<DocumentRef>,
    pub(super) files: Vec<PathBuf>,
    pub(super) errors: Collector,
    /// Hosts of DestinationRules that could not be read: their subsets are not reported
    /// unknown, since the error that matters is the DestinationRule's own.
    pub(super) broken_hosts: Vec<(String, String)>,
    /// The digest of the texts read so far (see [`RuleSet::version`]).
    pub(super) digest: u64,
    /// Bytes and values of the texts read so far, against the load's totals.
    pub(super) bytes: usize,
    pub(super) values: usize,
}

impl Gathered {
    /// Reads one source's documents; `Err` when the file cannot be read or parsed.
    pub(super) fn read_source(
        &mut self,
        source: &Source,
        options: &LoadOptions,
    ) -> Result<(), LoadError> {
        let (file, text) = match source {
            Source::Text(t) => (None, std::borrow::Cow::Borrowed(t.as_str())),
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
            return Err(in_file(
                LoadError::new(
                    ErrorKind::Limit,
                    format!(
                        "the texts of this load hold more than {} bytes together \
                     (Limits::max_total_bytes)",
                        limits.max_total_bytes
                    ),
                )
                .over_set_limit("max_total_bytes"),
            ));
        }
        // Each text, with a separator, so that moving a document between texts changes it.
        self.digest = fnv1a(fnv1a(self.digest, text.as_bytes()), &[0xff]);
        let left = limits.max_total_nodes.saturating_sub(self.values);
        let (docs, values) = match parse_stream_within(&text, limits, left) {
            Ok(parsed) => parsed,
            Err(e) => {
                if e.set_limit() == Some("max_total_nodes") {
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
            if self.read_root(doc, root, options) {
                break;
            }
        }
        Ok(())
    }

    /// Reads one document into an entry, or records it skipped or its error; true when the
    /// load must stop (see [`Collector::push`]).
    pub(super) fn read_root(
        &mut self,
        doc: DocumentRef,
        root: Node,
        options: &LoadOptions,
    ) -> bool {
        let namespace = options.default_namespace();
        let dr_host = destination_rule_host(&root, namespace);
        match read_document(doc, root, namespace) {
            Ok(Read::Skipped(doc)) => self.skipped.push(doc),
            Ok(Read::Entry(entry)) => self.add(entry),
            Err(e) => {
                self.broken_hosts.extend(dr_host);
                return self.errors.push(e);
            }
        }
        false
    }

    /// The errors gathered, in input order (by file, then document and line), if any.
    pub(super) fn finish_errors(&mut self) -> Result<(), LoadError> {
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
        // A second resource of one name is an error naming both; both are still lowered, so
        // that the mistakes of each are reported (neither hides the other's).
        if let Some(&at) = self.by_key.get(&key) {
            let first = &self.entries[at];
            let (kind, ns, name) = (&key.0, &key.1, &key.2);
            let message = format!(
                "{kind} {ns}/{name} is defined again: first in {}; a resource may appear once in a load (rename or remove one of them)",
                first.doc
            );
            self.errors.push(
                LoadError::new(ErrorKind::DuplicateResource, message)
                    .with_document(entry.doc.clone())
                    .at(entry.doc.line, 1),
            );
        } else {
            self.by_key.insert(key, self.entries.len());
        }
        self.entries.push(entry);
    }
}

/// For a DestinationRule document: its `spec.host` and namespace, as written.
fn destination_rule_host(root: &Node, default_namespace: &str) -> Option<(String, String)> {
    if root.get_str("kind") != Some("DestinationRule") {
        return None;
    }
    let host = root.get("spec")?.get_str("host")?.to_string();
    let namespace = root.get("metadata").and_then(|m| m.get_str("namespace"));
    Some((host, namespace.unwrap_or(default_namespace).to_string()))
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

fn read_document(
    mut doc: DocumentRef,
    root: Node,
    default_namespace: &str,
) -> Result<Read, LoadError> {
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
    let namespace = doc.namespace.as_deref().unwrap_or(default_namespace);
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
