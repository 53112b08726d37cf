//! The command line, read into what each command needs.

use std::path::PathBuf;

pub(crate) const CHECK_HELP: &str = "\
Usage: tower-mesh check [-n NAMESPACE] [--format text|json] [--deny-warnings] FILE...

Loads FILE... as one rule set (Istio's RouteRule, VirtualService and DestinationRule; the
Gateway API's HTTPRoute and GRPCRoute) and prints every error and warning with its place.
  -n, --namespace NS  the namespace of documents that name none (default: `default`), as
                    `kubectl apply -n NS` would give them
  --format text     one line per finding (the default)
  --format json     one JSON object per line per finding: severity, kind, file, document,
                    resource, line, column, path, value, message
  --deny-warnings   exit 1 when there is a warning, even though the rules load
Exit status: 0 the rules load, 1 they do not (or a warning with --deny-warnings), 2 usage.
";

pub(crate) const EXPLAIN_HELP: &str = "\
Usage: tower-mesh explain FILE... --target HOST [options] METHOD URI

Evaluates one request against the rules of FILE... and prints the decision and why.
  --target HOST               the service the request is addressed to (required)
  -H, --header 'name: value'  a request header (repeatable)
  --seed N                    draw fault percentages and weights from a generator seeded
                              with N, so that the same command gives the same answer
  --gateway NAME              evaluate for this gateway instead of the mesh
  --port N                    the port the request came in on
  --source-label KEY=VALUE    a label of the calling workload (repeatable)
  --source-namespace NS       the namespace of the calling workload
METHOD URI                    e.g. GET /reviews/1, or GET http://reviews:9080/reviews/1
Exit status: 0 explained, 1 the rules do not load, 2 usage.
";

/// What the command line asks for.
pub(crate) enum Parsed {
    /// Print this help (`None`: the general one) and exit 0.
    Help(Option<&'static str>),
    Version,
    Run(Command),
}

pub(crate) enum Command {
    Check(Check),
    Explain(Explain),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

pub(crate) struct Check {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) namespace: Option<String>,
    pub(crate) format: Format,
    pub(crate) deny_warnings: bool,
}

pub(crate) struct Explain {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) seed: Option<u64>,
    pub(crate) gateway: Option<String>,
    pub(crate) port: Option<u32>,
    pub(crate) source_labels: Vec<(String, String)>,
    pub(crate) source_namespace: Option<String>,
    pub(crate) method: String,
    pub(crate) uri: String,
}

pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.peekable();
    match args.next().as_deref() {
        None | Some("-h" | "--help" | "help") => Ok(Parsed::Help(None)),
        Some("-V" | "--version") => Ok(Parsed::Version),
        Some("check") => check(args),
        Some("explain") => explain(args),
        Some(other) => Err(format!(
            "unknown command `{other}`; the commands are `check` and `explain`"
        )),
    }
}

/// The value after an option, or an error naming the option.
fn value(args: &mut impl Iterator<Item = String>, option: &str) -> Result<String, String> {
    args.next().ok_or_else(|| format!("{option} needs a value"))
}

fn check(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut c = Check {
        files: Vec::new(),
        namespace: None,
        format: Format::Text,
        deny_warnings: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help(Some(CHECK_HELP))),
            "--deny-warnings" => c.deny_warnings = true,
            "-n" | "--namespace" => c.namespace = Some(value(&mut args, "--namespace")?),
            option if option.starts_with("--namespace=") => {
                c.namespace = Some(option["--namespace=".len()..].to_string());
            }
            "--format" => {
                c.format = match value(&mut args, "--format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    other => return Err(format!("--format is `text` or `json`, not `{other}`")),
                }
            }
            "--format=text" => c.format = Format::Text,
            "--format=json" => c.format = Format::Json,
            option if option.starts_with('-') && option != "-" => {
                return Err(format!("check: unknown option `{option}`"));
            }
            _ => c.files.push(PathBuf::from(arg)),
        }
    }
    if c.files.is_empty() {
        return Err("check needs at least one FILE".into());
    }
    Ok(Parsed::Run(Command::Check(c)))
}

/// `name: value` (or `name=value`) into its two parts.
fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("a header is written 'name: value'; got `{text}`"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

fn explain(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut e = Explain {
        files: Vec::new(),
        target: String::new(),
        headers: Vec::new(),
        seed: None,
        gateway: None,
        port: None,
        source_labels: Vec::new(),
        source_namespace: None,
        method: String::new(),
        uri: String::new(),
    };
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help(Some(EXPLAIN_HELP))),
            "--target" => e.target = value(&mut args, "--target")?,
            "-H" | "--header" => e.headers.push(header(&value(&mut args, "-H")?)?),
            "--seed" => {
                let v = value(&mut args, "--seed")?;
                e.seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed takes a whole number, not `{v}`"))?,
                );
            }
            "--gateway" => e.gateway = Some(value(&mut args, "--gateway")?),
            "--port" => {
                let v = value(&mut args, "--port")?;
                e.port = Some(
                    v.parse()
                        .map_err(|_| format!("--port takes a port number, not `{v}`"))?,
                );
            }
            "--source-label" => {
                let v = value(&mut args, "--source-label")?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--source-label is written KEY=VALUE; got `{v}`"))?;
                e.source_labels.push((k.to_string(), val.to_string()));
            }
            "--source-namespace" => {
                e.source_namespace = Some(value(&mut args, "--source-namespace")?)
            }
            option if option.starts_with('-') => {
                return Err(format!("explain: unknown option `{option}`"));
            }
            _ => rest.push(arg),
        }
    }
    explain_positionals(e, rest)
}

/// FILE... METHOD URI: the last two words are the request, the others the files.
fn explain_positionals(mut e: Explain, mut rest: Vec<String>) -> Result<Parsed, String> {
    if e.target.is_empty() {
        return Err("explain needs --target HOST: the service the request is for".into());
    }
    if rest.len() < 3 {
        return Err("explain needs FILE... METHOD URI".into());
    }
    e.uri = rest.pop().unwrap_or_default();
    e.method = rest.pop().unwrap_or_default();
    e.files = rest.into_iter().map(PathBuf::from).collect();
    Ok(Parsed::Run(Command::Explain(e)))
}
