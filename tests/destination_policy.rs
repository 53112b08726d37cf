//! A DestinationRule's traffic policy is read field by field and checked as Istio's validating
//! webhook checks it (each error with Istio's message, at its field); each block that is not
//! carried out in-process gets one warning per DestinationRule.

use tower_mesh::{ErrorKind, RuleSet};

/// A DestinationRule for `reviews` whose `spec` ends with `rest` (indented by two spaces).
fn dr(rest: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n{rest}"
    )
}

/// `trafficPolicy` holding `block` (one line, YAML flow style).
fn policy(block: &str) -> String {
    dr(&format!("  trafficPolicy: {{{block}}}\n"))
}

#[test]
fn every_rule_of_the_catalogue_is_an_error_at_its_field() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "empty policy",
            dr("  trafficPolicy: {}\n"),
            "spec.trafficPolicy",
            "traffic policy must have at least one field",
        ),
        (
            "tunnel and proxyProtocol",
            policy("tunnel: {targetHost: a.b, targetPort: 80}, proxyProtocol: {version: V1}"),
            "spec.trafficPolicy",
            "tunnel and proxyProtocol must not be set together",
        ),
        (
            "ejection time below 1ms",
            policy("outlierDetection: {baseEjectionTime: 0.5ms}"),
            "spec.trafficPolicy.outlierDetection.baseEjectionTime",
            "must be a valid duration greater than 1ms",
        ),
        (
            "local origin failures not split",
            policy("outlierDetection: {consecutiveLocalOriginFailures: 3}"),
            "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
        ),
        (
            "ejection percent 101",
            policy("outlierDetection: {maxEjectionPercent: 101}"),
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "percentage 101 is not in range 0..100",
        ),
        (
            "empty connection pool",
            policy("connectionPool: {}"),
            "spec.trafficPolicy.connectionPool",
            "connection pool must have at least one field",
        ),
        (
            "negative pending",
            policy("connectionPool: {http: {http1MaxPendingRequests: -1}}"),
            "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
            "http1 max pending requests must be non-negative",
        ),
        (
            "negative connections",
            policy("connectionPool: {tcp: {maxConnections: -5}}"),
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "max connections must be non-negative",
        ),
        (
            "upgrade and client protocol",
            policy("connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}"),
            "spec.trafficPolicy.connectionPool.http",
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
        ),
        (
            "keepalive without timeout",
            policy("connectionPool: {http: {http2KeepAlive: {interval: 1s}}}"),
            "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
            "http2 keepalive timeout is required",
        ),
        (
            "cookie without a name",
            policy("loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}"),
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
            "name required for HttpCookie",
        ),
        (
            "duplicate cookie attribute",
            policy(
                "loadBalancer: {consistentHash: {httpCookie: {name: u, attributes: [{name: a}, {name: a}]}}}",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name",
            "duplicate cookie attribute name: a",
        ),
        (
            "maglev not prime",
            policy(
                "loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 65536}}}",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
            "tableSize must be a prime number for maglev",
        ),
        (
            "maglev too large",
            policy(
                "loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 5000011}}}",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
            "tableSize must be less than 5000011 for maglev",
        ),
        (
            "ring size and maglev",
            policy(
                "loadBalancer: {consistentHash: {httpHeaderName: x, minimumRingSize: 64, maglev: {tableSize: 65537}}}",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "only one of MinimumRingSize or Maglev/Ringhash can be specified",
        ),
        (
            "distribute and failover",
            policy(
                "loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {a/*: 100}}], failover: [{from: a, to: b}]}}",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting",
            "can not simultaneously specify 'distribute' and 'failover'",
        ),
        (
            "weights not 100",
            policy(
                "loadBalancer: {localityLbSetting: {distribute: [{from: us-west/*, to: {us-west/*: 60, us-east/*: 30}}]}}",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
            "total locality weight 90 != 100",
        ),
        (
            "wildcard in the middle",
            policy(
                "loadBalancer: {localityLbSetting: {distribute: [{from: us-west/*/a, to: {us-west/*: 100}}]}}",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from",
            "locality us-west/*/a wildcard '*' number can not exceed 1 and must be in the end",
        ),
        (
            "failover to itself",
            policy(
                "loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-east}]}}, outlierDetection: {consecutive5xxErrors: 1}",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
            "locality lb failover settings must specify different regions",
        ),
        (
            "failover with a topology priority",
            policy(
                "loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}], failoverPriority: [topology.kubernetes.io/zone]}}",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting",
            "can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone' in 'failover_priority'",
        ),
        (
            "warmup without duration",
            policy("loadBalancer: {simple: ROUND_ROBIN, warmup: {aggression: 1}}"),
            "spec.trafficPolicy.loadBalancer.warmup.duration",
            "duration is required",
        ),
        (
            "port entry without port",
            policy("portLevelSettings: [{loadBalancer: {simple: RANDOM}}]"),
            "spec.trafficPolicy.portLevelSettings[0].port",
            "portTrafficPolicy must have valid port",
        ),
        (
            "empty port entry",
            policy("portLevelSettings: [{port: {number: 80}}]"),
            "spec.trafficPolicy.portLevelSettings[0]",
            "port traffic policy must have at least one field",
        ),
        (
            "mutual without a key",
            policy("tls: {mode: MUTUAL, clientCertificate: /c.pem}"),
            "spec.trafficPolicy.tls.privateKey",
            "private key required for mutual tls",
        ),
        (
            "insecure with a CA",
            policy("tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}"),
            "spec.trafficPolicy.tls",
            "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        ),
        (
            "tunnel protocol",
            policy("tunnel: {protocol: GET, targetHost: a.b, targetPort: 80}"),
            "spec.trafficPolicy.tunnel.protocol",
            "tunnel protocol must be \"CONNECT\" or \"POST\"",
        ),
        (
            "proxy protocol version",
            policy("proxyProtocol: {version: V3}"),
            "spec.trafficPolicy.proxyProtocol.version",
            "proxy protocol version is invalid: V3",
        ),
        (
            "a subset's policy",
            dr(
                "  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {connectionPool: {http: {maxRetries: -1}}}\n",
            ),
            "spec.subsets[0].trafficPolicy.connectionPool.http.maxRetries",
            "max retries must be non-negative",
        ),
        (
            "negative 5xx count",
            policy("outlierDetection: {consecutive5xxErrors: -1}"),
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
            "consecutive5xxErrors must be non-negative",
        ),
        (
            "connections past int32",
            policy("connectionPool: {tcp: {maxConnections: 5000000000}}"),
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "max connections must be at most 2147483647",
        ),
        (
            "negative ring size",
            policy(
                "loadBalancer: {consistentHash: {httpHeaderName: x, ringHash: {minimumRingSize: -8}}}",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize",
            "minimumRingSize must be non-negative",
        ),
        (
            "an unknown field",
            policy("loadBalancer: {simpel: RANDOM}"),
            "spec.trafficPolicy.loadBalancer.simpel",
            "unknown field",
        ),
    ];
    for (name, text, path, message) in cases {
        let err = RuleSet::from_yaml(&text)
            .err()
            .unwrap_or_else(|| panic!("{name}: loaded\n{text}"));
        let e = err.errors().next().unwrap();
        assert_eq!(e.path(), Some(path), "{name}: {err}");
        assert!(e.to_string().contains(message), "{name}: {err}");
        if name != "an unknown field" {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::InvalidValue | ErrorKind::MissingField | ErrorKind::Conflict
                ),
                "{name}: {:?}",
                e.kind()
            );
        }
    }
}

#[test]
fn valid_policies_load_with_one_warning_per_block_that_has_no_effect() {
    // Istio's circuit-breaking task, its locality failover task, and mTLS for every subset.
    let text = dr(r#"  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover: [{from: region1, to: region2}]
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}
"#);
    let rules = RuleSet::from_yaml(&text).unwrap();
    let warnings: Vec<String> = rules.warnings().iter().map(|w| w.to_string()).collect();
    for block in [
        "connectionPool",
        "outlierDetection",
        "loadBalancer",
        "tls",
        "portLevelSettings",
    ] {
        let n = warnings
            .iter()
            .filter(|w| w.contains(&format!("`{block}` has no effect in-process")))
            .count();
        assert_eq!(n, 1, "{block}: {warnings:#?}");
    }
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("TLS to endpoints belongs to the endpoint services")),
        "{warnings:#?}"
    );
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    // Failover without outlier detection is a warning, as in Istio.
    let text = policy("loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}");
    let rules = RuleSet::from_yaml(&text).unwrap();
    assert!(rules.warnings().iter().any(|w| {
        w.to_string()
            .contains("outlier detection policy must be provided for failover")
    }));
}

#[test]
fn the_policy_is_kept_as_a_model_value_for_its_service() {
    use std::time::Duration;
    use tower_mesh::ResourceKind;
    use tower_mesh::model::{Balance, HashKey, HashRing, TlsMode};
    let text = format!(
        "{}  exportTo: [\".\"]\n  workloadSelector: {{matchLabels: {{app: productpage}}}}\n",
        dr(r#"  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 10s}, ringHash: {minimumRingSize: 1024}}}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {tcp: {maxConnections: 100}}
  subsets:
  - name: v1
    labels: {version: v1}
"#)
    );
    let rules = RuleSet::from_yaml(&text).unwrap();
    let policy = rules
        .table()
        .destination_policy("Reviews.default.svc.cluster.local.")
        .expect("the DestinationRule of reviews, by its fully qualified name");
    assert_eq!(policy.resource.kind(), ResourceKind::DestinationRule);
    assert_eq!(policy.host, "reviews");
    assert_eq!(policy.export_to, ["."]);
    assert_eq!(
        policy.workload_selector.as_ref().unwrap().get("app"),
        Some("productpage")
    );
    assert_eq!(policy.subsets[0].name, "v1");
    let top = policy.traffic_policy.as_ref().unwrap();
    let Balance::ConsistentHash(hash) = &top.load_balancer.as_ref().unwrap().balance else {
        panic!("{top:?}");
    };
    assert!(
        matches!(&hash.key, Some(HashKey::Cookie { name, ttl: Some(t), .. }) if name == "user" && *t == Duration::from_secs(10))
    );
    assert_eq!(hash.ring, HashRing::RingHash(Some(1024)));
    let od = top.outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx_errors, Some(7));
    assert_eq!(od.base_ejection_time, Some(Duration::from_secs(900)));
    assert_eq!(top.port_level[0].port, 9080);
    assert_eq!(
        top.port_level[0]
            .connection_pool
            .as_ref()
            .unwrap()
            .tcp
            .max_connections,
        Some(100)
    );
    assert_eq!(top.tls, None::<TlsMode>);
    assert!(
        rules
            .table()
            .destination_policy("ratings.default.svc.cluster.local")
            .is_none()
    );
}

/// DestinationRules for one host in one namespace with the same `exportTo` and no
/// `workloadSelector` are merged: the first's subsets, then the later's new ones; the later's
/// `trafficPolicy` where the first has none; the merged ones named.
#[test]
fn destination_rules_of_one_namespace_are_merged() {
    let text = [
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a, namespace: shop}\nspec:\n  host: reviews\n  exportTo: ['frontend', '.']\n  subsets: [{name: v1, labels: {version: v1}}]\n",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b, namespace: shop}\nspec:\n  host: reviews.shop.svc.cluster.local\n  exportTo: ['.', 'frontend']\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets: [{name: v2, labels: {version: v2}}, {name: v1, labels: {version: x}}]\n",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: c, namespace: shop}\nspec:\n  host: reviews\n  workloadSelector: {matchLabels: {app: front}}\n  subsets: [{name: v3, labels: {version: v3}}]\n",
    ]
    .join("---\n");
    let rules = RuleSet::from_yaml(&text).unwrap();
    let policy = rules
        .table()
        .destination_policy("reviews.shop.svc.cluster.local")
        .expect("the merged policy");
    let names: Vec<&str> = policy.subsets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["v1", "v2"]);
    assert_eq!(policy.subsets[0].labels.get("version"), Some("v1"));
    assert_eq!(policy.resource.name(), "a");
    let merged: Vec<&str> = policy.merged_from.iter().map(|r| r.name()).collect();
    assert_eq!(merged, ["b"]);
    assert!(
        policy.traffic_policy.is_some(),
        "b's trafficPolicy fills a's gap"
    );
    let warnings: Vec<String> = rules.warnings().iter().map(|w| w.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Duplicate subset v1 found while merging destination rules")),
        "{warnings:#?}"
    );
    let notes: Vec<String> = rules.notes().iter().map(|w| w.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|w| w.contains("DestinationRule shop/c has a workloadSelector")),
        "the one with a workloadSelector is not merged: {notes:#?}"
    );
}
