//! A DestinationRule's traffic policy (top level, each subset's, each port's): checked as
//! Istio's validating webhook checks it, with Istio's messages; each block that the layer does
//! not carry out yet gets one warning per DestinationRule.

use std::collections::BTreeSet;

use super::{DestinationRuleLowering, Result};
use crate::config::path::FieldPath;
use crate::config::wire::Duration;
use crate::config::wire::policy as wire;
use crate::model;

/// The blocks of a policy, in the order Istio lists them, for the warnings.
const BLOCKS: [&str; 8] = [
    "loadBalancer",
    "connectionPool",
    "outlierDetection",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
    "retryBudget",
];

/// Envoy's `isPrime` for Maglev table sizes: 1, 2 and 3 count as prime, 0 does not.
fn is_prime(n: i64) -> bool {
    if n < 4 {
        return n > 0;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut i = 3;
    while i * i <= n {
        if n % i == 0 {
            return false;
        }
        i += 2;
    }
    true
}

impl DestinationRuleLowering<'_, '_> {
    /// Checks a `trafficPolicy` at `path`; `warned` holds the blocks already warned about in
    /// this DestinationRule.
    pub(crate) fn traffic_policy(
        &mut self,
        path: &FieldPath,
        tp: &wire::TrafficPolicy,
        warned: &mut BTreeSet<&'static str>,
    ) -> Result<()> {
        let set = [
            tp.load_balancer.is_some(),
            tp.connection_pool.is_some(),
            tp.outlier_detection.is_some(),
            tp.tls.is_some(),
            tp.port_level_settings.is_some(),
            tp.tunnel.is_some(),
            tp.proxy_protocol.is_some(),
            tp.retry_budget.is_some(),
        ];
        if !set.contains(&true) {
            return Err(self.invalid(path, "{}", "traffic policy must have at least one field"));
        }
        if tp.tunnel.is_some() && tp.proxy_protocol.is_some() {
            return Err(self.conflict(path, "tunnel and proxyProtocol must not be set together"));
        }
        for (block, present) in BLOCKS.iter().zip(set) {
            if present && warned.insert(block) {
                self.warn(Some(&path.key(block)), no_effect(block));
            }
        }
        let outlier = tp.outlier_detection.is_some();
        self.blocks(
            path,
            tp.load_balancer.as_ref(),
            tp.connection_pool.as_ref(),
            outlier,
        )?;
        if let Some(od) = &tp.outlier_detection {
            self.outlier_detection(&path.key("outlierDetection"), od)?;
        }
        if let Some(tls) = &tp.tls {
            self.client_tls(&path.key("tls"), tls)?;
        }
        for (i, p) in tp.port_level_settings.iter().flatten().enumerate() {
            self.port_policy(&path.key("portLevelSettings").index(i), p.as_ref())?;
        }
        if let Some(t) = &tp.tunnel {
            self.tunnel(&path.key("tunnel"), t)?;
        }
        if let Some(v) = tp
            .proxy_protocol
            .as_ref()
            .and_then(|p| p.version.as_deref())
            && !matches!(v, "V1" | "V2")
        {
            let p = path.key("proxyProtocol").key("version");
            return Err(self.invalid(&p, v, &format!("proxy protocol version is invalid: {v}")));
        }
        if let Some(pct) = tp.retry_budget.as_ref().and_then(|b| b.percent)
            && !(0.0..=100.0).contains(&pct)
        {
            let p = path.key("retryBudget").key("percent");
            return Err(self.invalid(&p, &pct.to_string(), "must be between 0 and 100"));
        }
        Ok(())
    }

    /// The load balancer and connection pool of a policy or port-level entry.
    fn blocks(
        &mut self,
        path: &FieldPath,
        lb: Option<&wire::LoadBalancer>,
        pool: Option<&wire::ConnectionPool>,
        outlier: bool,
    ) -> Result<()> {
        if let Some(lb) = lb {
            self.load_balancer(&path.key("loadBalancer"), lb, outlier)?;
        }
        if let Some(pool) = pool {
            self.connection_pool(&path.key("connectionPool"), pool)?;
        }
        Ok(())
    }

    fn port_policy(&mut self, path: &FieldPath, p: Option<&wire::PortTrafficPolicy>) -> Result<()> {
        let Some(p) = p else {
            return Err(self.invalid(path, "null", "traffic policy may not be null"));
        };
        let number = p.port.as_ref().and_then(|s| s.number).unwrap_or(0);
        if number == 0 {
            return Err(self.missing(&path.key("port"), "portTrafficPolicy must have valid port"));
        }
        if !(1..=65535).contains(&number) {
            self.warn(
                Some(&path.key("port").key("number")),
                format!("port {number} cannot occur (ports run from 1 to 65535): this entry never applies"),
            );
        }
        let set = [
            p.load_balancer.is_some(),
            p.connection_pool.is_some(),
            p.outlier_detection.is_some(),
            p.tls.is_some(),
        ];
        if !set.contains(&true) {
            return Err(self.invalid(
                path,
                "{}",
                "port traffic policy must have at least one field",
            ));
        }
        let outlier = p.outlier_detection.is_some();
        self.blocks(
            path,
            p.load_balancer.as_ref(),
            p.connection_pool.as_ref(),
            outlier,
        )?;
        if let Some(od) = &p.outlier_detection {
            self.outlier_detection(&path.key("outlierDetection"), od)?;
        }
        if let Some(tls) = &p.tls {
            self.client_tls(&path.key("tls"), tls)?;
        }
        Ok(())
    }

    /// A Duration field of the CRD's rule "must be a valid duration greater than 1ms".
    fn policy_duration(&self, path: &FieldPath, d: Option<&Duration>) -> Result<()> {
        match d {
            Some(text) => self
                .duration(path, text)
                .map(drop)
                .map_err(|_| self.invalid(path, text, "must be a valid duration greater than 1ms")),
            None => Ok(()),
        }
    }

    /// A count of the policy (an `int32` or `uint32` in Istio's schema): Istio's message when
    /// it is negative, and a range error past 2^31 - 1, which no count of the schema reaches.
    fn non_negative(&self, path: &FieldPath, v: Option<i64>, what: &str) -> Result<()> {
        match v {
            Some(n) if n < 0 => Err(self.invalid(
                path,
                &n.to_string(),
                &format!("{what} must be non-negative"),
            )),
            Some(n) if n > i64::from(i32::MAX) => Err(self.invalid(
                path,
                &n.to_string(),
                &format!("{what} must be at most {}", i32::MAX),
            )),
            _ => Ok(()),
        }
    }
}

impl DestinationRuleLowering<'_, '_> {
    fn load_balancer(
        &mut self,
        path: &FieldPath,
        lb: &wire::LoadBalancer,
        outlier: bool,
    ) -> Result<()> {
        if lb.simple.is_some() && lb.consistent_hash.is_some() {
            return Err(self.conflict(path, "only one of `simple` and `consistentHash` may be set"));
        }
        if let Some(simple) = lb.simple.as_deref()
            && !matches!(
                simple,
                "UNSPECIFIED"
                    | "LEAST_CONN"
                    | "RANDOM"
                    | "PASSTHROUGH"
                    | "ROUND_ROBIN"
                    | "LEAST_REQUEST"
            )
        {
            return Err(self.invalid(
                &path.key("simple"),
                simple,
                "allowed: UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST",
            ));
        }
        if let Some(ch) = &lb.consistent_hash {
            self.consistent_hash(&path.key("consistentHash"), ch)?;
        }
        if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
            return Err(self.conflict(
                path,
                "only one of localityLbSetting and zoneAwareLbSetting can be set",
            ));
        }
        if let Some(l) = &lb.locality_lb_setting {
            self.locality(&path.key("localityLbSetting"), l, outlier)?;
        }
        if let Some(w) = &lb.warmup {
            let p = path.key("warmup");
            if w.duration.is_none() {
                return Err(self.missing(&p.key("duration"), "duration is required"));
            }
            self.policy_duration(&p.key("duration"), w.duration.as_ref())?;
            if let Some(m) = w.minimum_percent.filter(|m| *m > 100.0) {
                return Err(self.invalid(
                    &p.key("minimumPercent"),
                    &m.to_string(),
                    "minimumPercent value should be less than or equal to 100",
                ));
            }
            if let Some(a) = w.aggression.filter(|a| *a <= 0.0) {
                return Err(self.invalid(
                    &p.key("aggression"),
                    &a.to_string(),
                    "aggression should be greater than 0",
                ));
            }
        }
        self.policy_duration(
            &path.key("warmupDurationSecs"),
            lb.warmup_duration_secs.as_ref(),
        )
    }

    fn consistent_hash(&mut self, path: &FieldPath, ch: &wire::ConsistentHash) -> Result<()> {
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip.is_some(),
            ch.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() > 1 {
            return Err(self.conflict(path, "only one hash key (httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName) may be set"));
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            return Err(self.conflict(path, "only one of ringHash and maglev may be set"));
        }
        if let Some(cookie) = &ch.http_cookie {
            let p = path.key("httpCookie");
            if cookie.name.as_deref().is_none_or(str::is_empty) {
                return Err(self.missing(&p.key("name"), "name required for HttpCookie"));
            }
            if let Some(ttl) = cookie.ttl.as_deref()
                && let Err(m) = crate::config::duration::parse_go_duration(ttl)
            {
                return Err(self.invalid(&p.key("ttl"), ttl, &m));
            }
            let mut names = BTreeSet::new();
            for (i, a) in cookie.attributes.iter().flatten().enumerate() {
                let name = a.name.as_deref().unwrap_or_default();
                let ap = p.key("attributes").index(i).key("name");
                if name.is_empty() {
                    return Err(self.missing(&ap, "cookie attribute name cannot be empty"));
                }
                if !names.insert(name) {
                    return Err(self.invalid(
                        &ap,
                        name,
                        &format!("duplicate cookie attribute name: {name}"),
                    ));
                }
            }
        }
        self.non_negative(
            &path.key("minimumRingSize"),
            ch.minimum_ring_size,
            "minimumRingSize",
        )?;
        let ring = ch.ring_hash.as_ref().and_then(|r| r.minimum_ring_size);
        let ring_path = path.key("ringHash").key("minimumRingSize");
        self.non_negative(&ring_path, ring, "minimumRingSize")?;
        if ch.minimum_ring_size.is_some_and(|n| n != 0) {
            if ch.ring_hash.is_some() || ch.maglev.is_some() {
                return Err(self.conflict(
                    path,
                    "only one of MinimumRingSize or Maglev/Ringhash can be specified",
                ));
            }
            self.warn(Some(&path.key("minimumRingSize")), "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead");
        }
        if let Some(m) = &ch.maglev {
            self.maglev(
                &path.key("maglev").key("tableSize"),
                m.table_size.unwrap_or(0),
            )?;
        }
        Ok(())
    }

    /// A Maglev table size: set, below 5,000,011, and prime by Envoy's test.
    fn maglev(&self, p: &FieldPath, size: i64) -> Result<()> {
        if size == 0 {
            return Err(self.missing(
                p,
                "tableSize must be set for maglev; tableSize must be a prime number for maglev",
            ));
        }
        if size >= 5_000_011 {
            return Err(self.invalid(
                p,
                &size.to_string(),
                "tableSize must be less than 5000011 for maglev",
            ));
        }
        if !is_prime(size) {
            return Err(self.invalid(
                p,
                &size.to_string(),
                "tableSize must be a prime number for maglev",
            ));
        }
        Ok(())
    }

    fn connection_pool(&mut self, path: &FieldPath, pool: &wire::ConnectionPool) -> Result<()> {
        if pool.tcp.is_none() && pool.http.is_none() {
            return Err(self.invalid(path, "{}", "connection pool must have at least one field"));
        }
        if let Some(h) = &pool.http {
            self.http_pool(&path.key("http"), h)?;
        }
        if let Some(t) = &pool.tcp {
            self.tcp_pool(&path.key("tcp"), t)?;
        }
        Ok(())
    }

    fn http_pool(&mut self, p: &FieldPath, h: &wire::HttpSettings) -> Result<()> {
        self.non_negative(
            &p.key("http1MaxPendingRequests"),
            h.http1_max_pending_requests,
            "http1 max pending requests",
        )?;
        self.non_negative(
            &p.key("http2MaxRequests"),
            h.http2_max_requests,
            "http2 max requests",
        )?;
        self.non_negative(
            &p.key("maxRequestsPerConnection"),
            h.max_requests_per_connection,
            "max requests per connection",
        )?;
        self.non_negative(&p.key("maxRetries"), h.max_retries, "max retries")?;
        self.non_negative(
            &p.key("maxConcurrentStreams"),
            h.max_concurrent_streams,
            "max concurrent streams",
        )?;
        self.policy_duration(&p.key("idleTimeout"), h.idle_timeout.as_ref())?;
        if let Some(u) = h.h2_upgrade_policy.as_deref()
            && !matches!(u, "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE")
        {
            return Err(self.invalid(
                &p.key("h2UpgradePolicy"),
                u,
                "allowed: DEFAULT, DO_NOT_UPGRADE, UPGRADE",
            ));
        }
        if h.h2_upgrade_policy.as_deref() == Some("UPGRADE") && h.use_client_protocol == Some(true)
        {
            return Err(self.conflict(
                p,
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            ));
        }
        if let Some(k) = &h.http2_keep_alive {
            let kp = p.key("http2KeepAlive");
            if k.interval.is_none() {
                return Err(
                    self.missing(&kp.key("interval"), "http2 keepalive interval is required")
                );
            }
            if k.timeout.is_none() {
                return Err(self.missing(&kp.key("timeout"), "http2 keepalive timeout is required"));
            }
            self.policy_duration(&kp.key("interval"), k.interval.as_ref())?;
            self.policy_duration(&kp.key("timeout"), k.timeout.as_ref())?;
        }
        Ok(())
    }

    fn tcp_pool(&mut self, p: &FieldPath, t: &wire::TcpSettings) -> Result<()> {
        self.non_negative(
            &p.key("maxConnections"),
            t.max_connections,
            "max connections",
        )?;
        self.policy_duration(&p.key("connectTimeout"), t.connect_timeout.as_ref())?;
        self.policy_duration(
            &p.key("maxConnectionDuration"),
            t.max_connection_duration.as_ref(),
        )?;
        if t.idle_timeout.as_deref() != Some("0s") {
            self.policy_duration(&p.key("idleTimeout"), t.idle_timeout.as_ref())?;
        }
        if let Some(k) = &t.tcp_keepalive {
            let kp = p.key("tcpKeepalive");
            self.policy_duration(&kp.key("time"), k.time.as_ref())?;
            self.policy_duration(&kp.key("interval"), k.interval.as_ref())?;
        }
        Ok(())
    }
}

impl DestinationRuleLowering<'_, '_> {
    fn outlier_detection(&mut self, path: &FieldPath, od: &wire::OutlierDetection) -> Result<()> {
        for (field, v) in [
            ("consecutiveErrors", od.consecutive_errors),
            ("consecutive5xxErrors", od.consecutive_5xx_errors),
            ("consecutiveGatewayErrors", od.consecutive_gateway_errors),
            (
                "consecutiveLocalOriginFailures",
                od.consecutive_local_origin_failures,
            ),
        ] {
            self.non_negative(&path.key(field), v, field)?;
        }
        self.policy_duration(
            &path.key("baseEjectionTime"),
            od.base_ejection_time.as_ref(),
        )?;
        self.policy_duration(&path.key("interval"), od.interval.as_ref())?;
        if od.consecutive_errors.is_some_and(|n| n != 0) {
            self.warn(Some(&path.key("consecutiveErrors")), "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead");
        }
        if od.consecutive_local_origin_failures.is_some_and(|n| n > 0)
            && od.split_external_local_origin_errors != Some(true)
        {
            return Err(self.conflict(&path.key("consecutiveLocalOriginFailures"), "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false"));
        }
        for (field, v) in [
            ("maxEjectionPercent", od.max_ejection_percent),
            ("minHealthPercent", od.min_health_percent),
        ] {
            if let Some(v) = v.filter(|v| !(0..=100).contains(v)) {
                return Err(self.invalid(
                    &path.key(field),
                    &v.to_string(),
                    &format!("percentage {v} is not in range 0..100"),
                ));
            }
        }
        for (i, code) in od
            .outlier_detection_http_error_codes
            .iter()
            .flatten()
            .enumerate()
        {
            if !(100..=599).contains(code) {
                let p = path.key("outlierDetectionHttpErrorCodes").index(i);
                return Err(self.invalid(
                    &p,
                    &code.to_string(),
                    "an HTTP status code must be between 100 and 599",
                ));
            }
        }
        Ok(())
    }

    fn client_tls(&mut self, path: &FieldPath, tls: &wire::ClientTls) -> Result<()> {
        let mode = tls.mode.as_deref().unwrap_or("DISABLE");
        if !matches!(mode, "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL") {
            return Err(self.invalid(
                &path.key("mode"),
                mode,
                "allowed: DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL",
            ));
        }
        let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let sans = tls
            .subject_alt_names
            .as_ref()
            .is_some_and(|s| !s.is_empty());
        if tls.insecure_skip_verify == Some(true)
            && (given(&tls.ca_certificates) || given(&tls.credential_name) || sans)
        {
            return Err(self.conflict(
                path,
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
            ));
        }
        if given(&tls.credential_name) {
            if given(&tls.client_certificate)
                || given(&tls.private_key)
                || given(&tls.ca_certificates)
                || given(&tls.ca_crl)
            {
                return Err(self.conflict(path, "cannot specify client certificates or CA certificate or CA CRL If credentialName is set"));
            }
            return Ok(());
        }
        if mode == "MUTUAL" {
            if !given(&tls.client_certificate) {
                return Err(self.missing(
                    &path.key("clientCertificate"),
                    "client certificate required for mutual tls",
                ));
            }
            if !given(&tls.private_key) {
                return Err(self.missing(
                    &path.key("privateKey"),
                    "private key required for mutual tls",
                ));
            }
        }
        Ok(())
    }

    fn tunnel(&mut self, path: &FieldPath, t: &wire::Tunnel) -> Result<()> {
        if let Some(p) = t
            .protocol
            .as_deref()
            .filter(|p| !matches!(*p, "" | "CONNECT" | "POST"))
        {
            return Err(self.invalid(
                &path.key("protocol"),
                p,
                "tunnel protocol must be \"CONNECT\" or \"POST\"",
            ));
        }
        let host = t.target_host.as_deref().unwrap_or_default();
        let ip = host.parse::<std::net::IpAddr>().is_ok();
        if !ip && super::syntax::destination_host(host).is_err() {
            return Err(self.invalid(
                &path.key("targetHost"),
                host,
                &format!("tunnel target host must be valid FQDN or IP address: {host}"),
            ));
        }
        let port = t.target_port.unwrap_or(0);
        if !(1..=65535).contains(&port) {
            return Err(self.invalid(
                &path.key("targetPort"),
                &port.to_string(),
                &format!("tunnel target port is invalid: {port}"),
            ));
        }
        Ok(())
    }
}

/// The topology labels that `failover` and `failoverPriority` must not both name.
const TOPOLOGY: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Istio's checks of one locality written in `distribute` (`region/zone/subzone`, `*` last).
fn locality_problem(l: &str) -> Option<String> {
    let stars = l.matches('*').count();
    if stars > 1 || (stars == 1 && !l.ends_with('*')) {
        return Some(format!(
            "locality {l} wildcard '*' number can not exceed 1 and must be in the end"
        ));
    }
    if l.split('/').any(str::is_empty) {
        return Some(format!(
            "locality {l} must not contain empty region/zone/subzone info"
        ));
    }
    None
}

impl DestinationRuleLowering<'_, '_> {
    fn locality(
        &mut self,
        path: &FieldPath,
        l: &wire::LocalityLbSetting,
        outlier: bool,
    ) -> Result<()> {
        let (distribute, failover) = (
            l.distribute.as_deref().unwrap_or_default(),
            l.failover.as_deref().unwrap_or_default(),
        );
        if !distribute.is_empty() && !failover.is_empty() {
            return Err(self.conflict(
                path,
                "can not simultaneously specify 'distribute' and 'failover'",
            ));
        }
        let priority = l.failover_priority.as_deref().unwrap_or_default();
        if !failover.is_empty()
            && let Some(label) = priority.iter().find(|p| TOPOLOGY.contains(&p.as_str()))
        {
            return Err(self.conflict(path, &format!("can not simultaneously set 'failover' and topology label '{label}' in 'failover_priority'")));
        }
        for (i, d) in distribute.iter().enumerate() {
            self.distribute(&path.key("distribute").index(i), d)?;
        }
        for (i, f) in failover.iter().enumerate() {
            let p = path.key("failover").index(i);
            let (from, to) = (
                f.from.as_deref().unwrap_or_default(),
                f.to.as_deref().unwrap_or_default(),
            );
            if from == to {
                return Err(self.invalid(
                    &p,
                    from,
                    "locality lb failover settings must specify different regions",
                ));
            }
            if from.contains('/') || to.contains('/') {
                return Err(self.invalid(&p, from, "locality lb failover only specify region"));
            }
            if from.contains('*') || to.contains('*') {
                return Err(self.invalid(
                    &p,
                    from,
                    "locality lb failover region should not contain '*' wildcard",
                ));
            }
        }
        if (!failover.is_empty() || !priority.is_empty()) && !outlier {
            self.warn(
                Some(path),
                "outlier detection policy must be provided for failover",
            );
        }
        Ok(())
    }

    /// One `distribute` entry: its localities, and weights from 1 to 100 adding up to 100.
    fn distribute(&mut self, p: &FieldPath, d: &wire::Distribute) -> Result<()> {
        let from = d.from.as_deref().unwrap_or_default();
        if let Some(problem) = locality_problem(from) {
            return Err(self.invalid(&p.key("from"), from, &problem));
        }
        let mut total = 0;
        for (to, w) in d.to.iter().flatten() {
            if let Some(problem) = locality_problem(to) {
                return Err(self.invalid(&p.key("to").key(to), to, &problem));
            }
            if !(1..=100).contains(w) {
                return Err(self.invalid(
                    &p.key("to").key(to),
                    &w.to_string(),
                    "locality weight must be in range [1, 100]",
                ));
            }
            total += w;
        }
        if total != 100 {
            return Err(self.invalid(
                &p.key("to"),
                &total.to_string(),
                &format!("total locality weight {total} != 100"),
            ));
        }
        Ok(())
    }
}

/// The warning for a block the layer does not carry out.
fn no_effect(block: &str) -> String {
    let why = match block {
        "tls" => "TLS to endpoints belongs to the endpoint services",
        "tunnel" => "it applies to TCP and TLS routes, which tower-mesh does not handle",
        "proxyProtocol" => "tower-mesh opens no connection of its own",
        _ => "traffic policy is read and checked, but not carried out by this release",
    };
    format!("`{block}` has no effect in-process: {why}")
}

/// A duration the checks have accepted.
fn dur(d: Option<&Duration>) -> Option<std::time::Duration> {
    d.and_then(|d| crate::config::duration::parse_go_duration(d).ok())
}

/// A count the checks have found non-negative.
fn count(n: Option<i64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// A checked `trafficPolicy` as the model keeps it.
pub(crate) fn to_model(tp: &wire::TrafficPolicy) -> model::TrafficPolicy {
    model::TrafficPolicy {
        load_balancer: tp.load_balancer.as_ref().map(load_balancer),
        connection_pool: tp.connection_pool.as_ref().map(connection_pool),
        outlier_detection: tp.outlier_detection.as_ref().map(outlier_detection),
        tls: tp.tls.as_ref().map(tls_mode),
        port_level: tp
            .port_level_settings
            .iter()
            .flatten()
            .flatten()
            .map(|p| model::PortPolicy {
                port: p
                    .port
                    .as_ref()
                    .and_then(|s| s.number)
                    .map_or(0, |n| n as u32),
                load_balancer: p.load_balancer.as_ref().map(load_balancer),
                connection_pool: p.connection_pool.as_ref().map(connection_pool),
                outlier_detection: p.outlier_detection.as_ref().map(outlier_detection),
                tls: p.tls.as_ref().map(tls_mode),
            })
            .collect(),
        tunnel: tp.tunnel.is_some(),
        proxy_protocol: tp.proxy_protocol.is_some(),
        retry_budget: tp.retry_budget.as_ref().map(|b| model::RetryBudget {
            percent: b.percent,
            min_retry_concurrency: count(b.min_retry_concurrency),
        }),
    }
}

fn load_balancer(lb: &wire::LoadBalancer) -> model::LoadBalancer {
    let balance = match (lb.simple.as_deref(), &lb.consistent_hash) {
        (_, Some(ch)) => model::Balance::ConsistentHash(consistent_hash(ch)),
        (Some("ROUND_ROBIN"), _) => model::Balance::RoundRobin,
        (Some("LEAST_REQUEST" | "LEAST_CONN"), _) => model::Balance::LeastRequest,
        (Some("RANDOM"), _) => model::Balance::Random,
        (Some("PASSTHROUGH"), _) => model::Balance::Passthrough,
        _ => model::Balance::Default,
    };
    let locality = lb.locality_lb_setting.as_ref().map(|l| model::Locality {
        enabled: l.enabled,
        distribute: l
            .distribute
            .iter()
            .flatten()
            .map(|d| {
                let to =
                    d.to.iter()
                        .flatten()
                        .map(|(k, w)| (k.clone(), *w as u32))
                        .collect();
                (d.from.clone().unwrap_or_default(), to)
            })
            .collect(),
        failover: l
            .failover
            .iter()
            .flatten()
            .map(|f| {
                (
                    f.from.clone().unwrap_or_default(),
                    f.to.clone().unwrap_or_default(),
                )
            })
            .collect(),
        failover_priority: l.failover_priority.clone().unwrap_or_default(),
    });
    let warmup = match (&lb.warmup, dur(lb.warmup_duration_secs.as_ref())) {
        (Some(w), _) => dur(w.duration.as_ref()).map(|duration| model::Warmup {
            duration,
            minimum_percent: w.minimum_percent,
            aggression: w.aggression,
        }),
        (None, Some(duration)) => Some(model::Warmup {
            duration,
            minimum_percent: None,
            aggression: None,
        }),
        (None, None) => None,
    };
    model::LoadBalancer {
        balance,
        locality,
        zone_aware: lb.zone_aware_lb_setting.is_some(),
        warmup,
    }
}

fn consistent_hash(ch: &wire::ConsistentHash) -> model::ConsistentHash {
    let key = if let Some(h) = &ch.http_header_name {
        Some(model::HashKey::Header(h.clone()))
    } else if let Some(c) = &ch.http_cookie {
        Some(model::HashKey::Cookie {
            name: c.name.clone().unwrap_or_default(),
            path: c.path.clone(),
            ttl: c
                .ttl
                .as_deref()
                .and_then(|t| crate::config::duration::parse_go_duration(t).ok()),
            attributes: c
                .attributes
                .iter()
                .flatten()
                .map(|a| {
                    (
                        a.name.clone().unwrap_or_default(),
                        a.value.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        })
    } else if ch.use_source_ip == Some(true) {
        Some(model::HashKey::SourceIp)
    } else {
        ch.http_query_parameter_name
            .clone()
            .map(model::HashKey::QueryParameter)
    };
    let ring = match (&ch.maglev, &ch.ring_hash) {
        (Some(m), _) => model::HashRing::Maglev(m.table_size.unwrap_or(0) as u64),
        (None, Some(r)) => model::HashRing::RingHash(r.minimum_ring_size.map(|n| n as u64)),
        (None, None) => {
            model::HashRing::RingHash(ch.minimum_ring_size.filter(|n| *n != 0).map(|n| n as u64))
        }
    };
    model::ConsistentHash { key, ring }
}

fn connection_pool(pool: &wire::ConnectionPool) -> model::ConnectionPool {
    let mut out = model::ConnectionPool::default();
    if let Some(t) = &pool.tcp {
        out.tcp.max_connections = count(t.max_connections);
        out.tcp.connect_timeout = dur(t.connect_timeout.as_ref());
        out.tcp.max_connection_duration = dur(t.max_connection_duration.as_ref());
        out.tcp.idle_timeout = dur(t.idle_timeout.as_ref());
    }
    if let Some(h) = &pool.http {
        out.http.http1_max_pending_requests = count(h.http1_max_pending_requests);
        out.http.http2_max_requests = count(h.http2_max_requests);
        out.http.max_requests_per_connection = count(h.max_requests_per_connection);
        out.http.max_retries = count(h.max_retries);
        out.http.idle_timeout = dur(h.idle_timeout.as_ref());
        out.http.max_concurrent_streams = count(h.max_concurrent_streams);
        out.http.h2_upgrade = h.h2_upgrade_policy.as_deref() == Some("UPGRADE");
        out.http.use_client_protocol = h.use_client_protocol == Some(true);
    }
    out
}

fn outlier_detection(od: &wire::OutlierDetection) -> model::OutlierDetection {
    model::OutlierDetection {
        consecutive_5xx_errors: count(od.consecutive_5xx_errors),
        consecutive_gateway_errors: count(od.consecutive_gateway_errors),
        consecutive_errors: count(od.consecutive_errors),
        split_external_local_origin_errors: od.split_external_local_origin_errors == Some(true),
        consecutive_local_origin_failures: count(od.consecutive_local_origin_failures),
        interval: dur(od.interval.as_ref()),
        base_ejection_time: dur(od.base_ejection_time.as_ref()),
        max_ejection_percent: count(od.max_ejection_percent),
        min_health_percent: count(od.min_health_percent),
        http_error_codes: od
            .outlier_detection_http_error_codes
            .iter()
            .flatten()
            .map(|c| *c as u16)
            .collect(),
    }
}

fn tls_mode(tls: &wire::ClientTls) -> model::TlsMode {
    match tls.mode.as_deref() {
        Some("SIMPLE") => model::TlsMode::Simple,
        Some("MUTUAL") => model::TlsMode::Mutual,
        Some("ISTIO_MUTUAL") => model::TlsMode::IstioMutual,
        _ => model::TlsMode::Disable,
    }
}
