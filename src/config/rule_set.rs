//! [`RuleSet`]: loaded, validated, compiled rules, with the warnings the load produced.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Request;

use super::LoadOptions;
use super::error::{Collector, DocumentRef, LoadError, Warning};
use super::reader::{FNV_OFFSET, Gathered, Source};
use crate::model::{Context, Decision, Explanation, RouteTable, Sampler};

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
    notes: Vec<Warning>,
    skipped: Vec<DocumentRef>,
    files: Vec<PathBuf>,
    options: LoadOptions,
    /// A digest of the texts the rules were read from.
    digest: u64,
    /// Where the texts came from a cluster: the newest `resourceVersion` among their objects.
    revision: Option<String>,
}

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
            notes: Vec::new(),
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

    /// Rules assembled from their parts (by the loader, or from objects one at a time).
    pub(super) fn from_parts(
        assembled: super::assemble::Assembled,
        skipped: Vec<DocumentRef>,
        files: Vec<PathBuf>,
        options: LoadOptions,
        digest: u64,
    ) -> Self {
        RuleSet {
            table: Arc::new(assembled.table),
            warnings: assembled.warnings,
            notes: assembled.notes,
            skipped,
            files,
            options,
            digest,
            revision: None,
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

    /// Scope notes, each naming its resource: what Istio would act on but tower-mesh does not
    /// evaluate in-process (a VirtualService's `tcp` and `tls` routes, a Gateway API route's
    /// Gateway parents, a wildcard destination host, a VirtualService without hosts that no root
    /// delegates to). The rest of each document applies; notes are not warnings.
    ///
    /// ```
    /// let rules = tower_mesh::RuleSet::from_yaml(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: db}
    /// spec:
    ///   hosts: [db]
    ///   http: [{route: [{destination: {host: db}}]}]
    ///   tcp: [{route: [{destination: {host: db}}]}]
    /// "#)?;
    /// assert!(rules.warnings().is_empty());
    /// assert!(rules.notes()[0].message().contains("`tcp` routes are not HTTP"));
    /// # Ok::<(), tower_mesh::LoadError>(())
    /// ```
    pub fn notes(&self) -> &[Warning] {
        &self.notes
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

/// Loads texts and files together as one set of rules.
///
/// A resource may appear once in a load: a second document with the same kind, namespace and
/// name is an error ([`ErrorKind::DuplicateResource`](crate::ErrorKind::DuplicateResource))
/// naming both, and the mistakes of both are reported.
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
        check_namespace(self.options.default_namespace())?;
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
        let assembled = super::assemble::build(&mut gathered, &self.options)?;
        Ok(RuleSet::from_parts(
            assembled,
            gathered.skipped,
            gathered.files,
            self.options,
            gathered.digest,
        ))
    }
}

/// The default namespace must be a namespace name (the lowering's own check).
fn check_namespace(namespace: &str) -> Result<(), LoadError> {
    super::lower::syntax::namespace(namespace).map_err(|problem| {
        LoadError::new(
            super::error::ErrorKind::InvalidValue,
            format!(
                "the default namespace `{namespace}` (LoadOptions::with_default_namespace) is {problem}"
            ),
        )
        .with_value(namespace)
    })
}
