//! Service host names: the canonical name a host is keyed by, and the names it answers to.

/// The names of one service host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceHost {
    /// The fully qualified name for mesh services (`reviews.default.svc.cluster.local`), the
    /// host as written (lower-case) otherwise.
    pub(crate) canonical: String,
    /// Every name a request may use for it (`reviews`, `reviews.default`, ...).
    pub(crate) names: Vec<String>,
}

const CLUSTER_SUFFIX: &str = ".svc.cluster.local";

/// Resolves `host` as Istio does for a resource in `namespace`: a short name is a service of
/// that namespace.
pub(crate) fn service_host(host: &str, namespace: &str) -> ServiceHost {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let is_special = host == "*" || host.contains(':') || host.parse::<std::net::IpAddr>().is_ok();
    if !is_special && !host.contains('.') {
        if host.starts_with('*') {
            // A short wildcard (`*foo`) is a suffix wildcard in the namespace, as Pilot
            // expands it; a request names the full host.
            let fqdn = format!("{host}.{namespace}{CLUSTER_SUFFIX}");
            return ServiceHost {
                canonical: fqdn.clone(),
                names: vec![fqdn],
            };
        }
        return mesh_names(&host, namespace);
    }
    if let Some(rest) = host.strip_suffix(CLUSTER_SUFFIX)
        && let Some((name, ns)) = rest.split_once('.')
        && !ns.contains('.')
    {
        return mesh_names(name, ns);
    }
    ServiceHost {
        canonical: host.clone(),
        names: vec![host],
    }
}

fn mesh_names(name: &str, namespace: &str) -> ServiceHost {
    let fqdn = format!("{name}.{namespace}{CLUSTER_SUFFIX}");
    ServiceHost {
        canonical: fqdn.clone(),
        names: vec![
            name.to_string(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
            fqdn,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_agree() {
        let a = service_host("reviews", "default");
        let b = service_host("reviews.default.svc.cluster.local", "other");
        assert_eq!(a, b);
        assert_eq!(a.names[0], "reviews");
        let w = service_host("*.example.com", "default");
        assert_eq!(w.names, vec!["*.example.com".to_string()]);
        let short = service_host("*foo", "bar");
        assert_eq!(short.names, vec!["*foo.bar.svc.cluster.local".to_string()]);
        assert_eq!(service_host("*", "bar").names, vec!["*".to_string()]);
        assert_eq!(
            service_host("Api.Example.COM.", "x").canonical,
            "api.example.com"
        );
    }
}
