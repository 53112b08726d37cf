//! Loading Istio configuration: YAML or JSON documents into a [`RuleSet`].
//!
//! Documents are read into a tree that remembers lines, deserialized into wire types that
//! mirror Istio's schema (unknown fields rejected), validated, and lowered into the
//! [`model`](crate::model). Kinds that are not routing configuration are skipped and listed.

mod assemble;
mod de;
mod duration;
mod error;
mod file;
mod limits;
mod lower;
mod node;
#[cfg(feature = "kube")]
pub(crate) mod objects;
mod path;
mod reader;
#[cfg(test)]
mod reference_props;
mod rule_set;
mod suggest;
mod wire;

#[cfg_attr(not(feature = "watch"), allow(unused_imports))]
pub(crate) use error::ShownPath;
pub use error::{DocumentRef, ErrorKind, LoadError, Warning};
#[cfg_attr(not(feature = "watch"), allow(unused_imports))]
pub(crate) use file::Stamp;
pub use limits::Limits;
pub use rule_set::{Loader, RuleSet};

/// Reads every document of a YAML (or JSON) text into `T`, with the loader's strict reader:
/// unknown fields and duplicate keys are errors, the [`Limits`] apply, and every error names
/// the document, line and field path.
///
/// It serves files kept beside Istio's own, such as conformance case files.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Case { name: String }
///
/// let cases: Vec<Case> = tower_mesh::config::read_yaml("name: a\n---\nname: b\n")?;
/// assert_eq!(cases[1].name, "b");
/// let err = tower_mesh::config::read_yaml::<Case>("name: a\nnmae: b\n").unwrap_err();
/// assert_eq!(err.kind(), tower_mesh::ErrorKind::UnknownField);
/// assert_eq!(err.line(), Some(2));
/// # Ok::<(), tower_mesh::LoadError>(())
/// ```
pub fn read_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, LoadError> {
    let limits = Limits::default();
    let mut out = Vec::new();
    for (i, doc) in node::parse_stream(text, &limits)?.into_iter().enumerate() {
        let Some(root) = doc.root else { continue };
        let value = de::from_node(&root, "").map_err(|e| {
            e.with_document(DocumentRef {
                index: i + 1,
                line: doc.line,
                ..DocumentRef::default()
            })
        })?;
        out.push(value);
    }
    Ok(out)
}

/// How the loader reads configuration.
///
/// Set with `with_*` methods, read with the methods of the same name without it:
///
/// ```
/// use tower_mesh::{Limits, LoadOptions};
///
/// let options = LoadOptions::default()
///     .with_gateway_merge(true)
///     .with_limits(Limits { max_routes: 1_000, ..Limits::default() });
/// assert!(options.gateway_merge());
/// assert!(!options.pilot_fault_compat());
/// assert_eq!(options.limits().max_routes, 1_000);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub(crate) default_namespace: Option<String>,
    pub(crate) gateway_merge: bool,
    pub(crate) pilot_fault_compat: bool,
    pub(crate) limits: Limits,
}

impl LoadOptions {
    /// The namespace of documents that name none in `metadata.namespace` (`default` unless
    /// set), as `kubectl apply -n NAMESPACE` gives them one. It must be a namespace name (a
    /// DNS label: 1 to 63 lower-case letters, digits or `-`, starting and ending with a letter
    /// or digit), or the load fails saying so.
    ///
    /// ```
    /// use tower_mesh::{Context, LoadOptions, Loader, NeverSampler, Outcome};
    ///
    /// let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}]}]\n";
    /// let options = LoadOptions::default().with_default_namespace("bookinfo");
    /// assert_eq!(options.default_namespace(), "bookinfo");
    /// let rules = Loader::new().options(options).text(text).load()?;
    /// let req = http::Request::get("/").body(())?;
    /// let outcome = |host: &str| rules.evaluate(&req, &Context::new().with_host(host), &NeverSampler).outcome();
    /// assert_eq!(outcome("reviews.bookinfo.svc.cluster.local"), Outcome::Forward);
    /// assert_eq!(outcome("reviews.default.svc.cluster.local"), Outcome::PassThrough);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = Some(namespace.into());
        self
    }

    /// The namespace of documents that name none.
    pub fn default_namespace(&self) -> &str {
        self.default_namespace.as_deref().unwrap_or("default")
    }

    /// Several VirtualServices for one host are merged on the mesh too, as on an ingress
    /// gateway (their routes concatenated in load order, catch-all routes last), instead of the
    /// first one winning as on a sidecar. A `Context` that names a gateway always merges the
    /// VirtualServices bound to it, as Istio's gateways do.
    pub fn with_gateway_merge(mut self, on: bool) -> Self {
        self.gateway_merge = on;
        self
    }

    /// Whether gateway merge is on.
    pub fn gateway_merge(&self) -> bool {
        self.gateway_merge
    }

    /// RouteRule faults as Pilot implemented them, not as documented: an omitted `percent`
    /// means 0% (the fault is dropped) and a fractional percent is truncated to an integer.
    pub fn with_pilot_fault_compat(mut self, on: bool) -> Self {
        self.pilot_fault_compat = on;
        self
    }

    /// Whether RouteRule faults follow Pilot's implementation rather than its documentation.
    pub fn pilot_fault_compat(&self) -> bool {
        self.pilot_fault_compat
    }

    /// Sets the loader's limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The loader's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
