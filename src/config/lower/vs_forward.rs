//! VirtualService routes: where they send requests (destinations, weights, mirrors) and the
//! header operations on the way.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Result, VirtualServiceLowering, syntax};
use crate::config::path::FieldPath;
use crate::config::wire::networking as wire;
use crate::model::assembly::SubsetUse;
use crate::model::service_host;
use crate::model::{Action, Destination, HeaderPolicy, Labels, Mirror, PPM, WeightedDestination};

impl VirtualServiceLowering<'_, '_> {
    /// `mirror` (with `mirrorPercentage` or the deprecated `mirrorPercent`) and `mirrors`.
    pub(super) fn mirrors(
        &mut self,
        path: &FieldPath,
        (mirror, percentage, percent): (
            Option<wire::Destination>,
            Option<wire::Percent>,
            Option<u32>,
        ),
        mirrors: Option<Vec<wire::HttpMirrorPolicy>>,
        ns: &str,
    ) -> Result<Vec<Mirror>> {
        // Both percentages are checked, and the deprecated one warned about, whether or not a
        // `mirror` is set (as Istio validates them); `mirrorPercentage` wins.
        let from_percentage = match percentage {
            Some(p) => Some(self.percentage(
                &path.key("mirrorPercentage").key("value"),
                p.value.unwrap_or(0.0),
            )?),
            None => None,
        };
        let from_percent = match percent {
            Some(pct) => {
                self.warn(
                    Some(&path.key("mirrorPercent")),
                    "`mirrorPercent` is deprecated; use `mirrorPercentage`",
                );
                if pct > 100 {
                    return Err(self.invalid(
                        &path.key("mirrorPercent"),
                        &pct.to_string(),
                        "a percent must be between 0 and 100",
                    ));
                }
                Some(pct * 10_000)
            }
            None => None,
        };
        let mut out = Vec::new();
        if let Some(m) = mirror {
            let destination = self.destination(&path.key("mirror"), Some(m), ns)?;
            let ppm = from_percentage.or(from_percent).unwrap_or(PPM);
            out.push(Mirror::new(destination, ppm));
        }
        for (i, m) in mirrors.into_iter().flatten().enumerate() {
            let mpath = path.key("mirrors").index(i);
            let destination = self.destination(&mpath.key("destination"), m.destination, ns)?;
            let ppm = match m.percentage {
                Some(p) => self.percentage(
                    &mpath.key("percentage").key("value"),
                    p.value.unwrap_or(0.0),
                )?,
                None => PPM,
            };
            out.push(Mirror::new(destination, ppm));
        }
        Ok(out)
    }

    /// `route`: the weighted destinations of a forward.
    pub(super) fn forward(
        &mut self,
        rpath: &FieldPath,
        route: Vec<wire::HttpRouteDestination>,
        ns: &str,
    ) -> Result<Action> {
        let mut destinations = Vec::new();
        for (i, d) in route.into_iter().enumerate() {
            destinations.push(self.weighted_destination(&rpath.index(i), d, ns)?);
        }
        let total: u64 = destinations.iter().map(|d| u64::from(d.weight())).sum();
        if destinations.len() > 1 && total == 0 {
            return Err(self.invalid(
                rpath,
                "0",
                "with several destinations, the weights must not all be 0",
            ));
        }
        if total > u64::from(u32::MAX) {
            return Err(self.invalid(
                rpath,
                &total.to_string(),
                "the weights add up to more than 4294967295",
            ));
        }
        Ok(Action::forward(destinations))
    }

    /// One entry of `route`: its destination, weight and header operations.
    pub(super) fn weighted_destination(
        &mut self,
        p: &FieldPath,
        d: wire::HttpRouteDestination,
        ns: &str,
    ) -> Result<WeightedDestination> {
        let weight = d.weight.unwrap_or(0);
        if weight < 0 {
            return Err(self.invalid(
                &p.key("weight"),
                &weight.to_string(),
                "a weight must not be negative",
            ));
        }
        let destination = self.destination(&p.key("destination"), d.destination, ns)?;
        let mut headers = self.headers(&p.key("headers"), d.headers)?;
        let removed = [
            (
                "appendRequestHeaders",
                adding(d.append_request_headers),
                true,
            ),
            (
                "appendResponseHeaders",
                adding(d.append_response_headers),
                false,
            ),
            ("appendHeaders", None, true),
            (
                "removeRequestHeaders",
                removing(d.remove_request_headers),
                true,
            ),
            (
                "removeResponseHeaders",
                removing(d.remove_response_headers),
                false,
            ),
        ];
        self.removed_header_fields(p, &mut headers, removed)?;
        Ok(WeightedDestination::new(
            destination,
            weight as u32,
            headers,
        ))
    }

    pub(super) fn destination(
        &mut self,
        path: &FieldPath,
        d: Option<wire::Destination>,
        ns: &str,
    ) -> Result<Arc<Destination>> {
        let Some(d) = d else {
            return Err(self.missing(path, "`destination` is required"));
        };
        let Some(host) = d.host.filter(|h| !h.is_empty()) else {
            return Err(self.missing(&path.key("host"), "a destination needs a `host`"));
        };
        if let Err(problem) = syntax::destination_host(&host) {
            return Err(self.invalid(&path.key("host"), &host, &problem));
        }
        let port = match d.port {
            Some(p) => {
                if p.name.is_some() {
                    return Err(self.invalid(
                        &path.key("port").key("name"),
                        p.name.as_deref().unwrap_or_default(),
                        "`port.name` was removed from Istio; use `port.number`",
                    ));
                }
                // Proto3: `port: {}` is `number: 0`.
                match p.number.unwrap_or(0) {
                    n @ 1..=65535 => Some(n),
                    n => {
                        return Err(self.invalid(
                            &path.key("port").key("number"),
                            &n.to_string(),
                            "a port must be between 1 and 65535 (`port: {}` is port 0)",
                        ));
                    }
                }
            }
            None => None,
        };
        if host.starts_with('*') {
            self.note(
                Some(&path.key("host")),
                format!("destination host {host} is a name, not a pattern: requests go to the destination registered under exactly this name (with Istio, a wildcard ServiceEntry of that name)"),
            );
        }
        let subset = d.subset.filter(|s| !s.is_empty()).map(|subset| {
            let subset: Arc<str> = subset.into();
            let at = self.pos(&path.key("subset"));
            self.subset_uses.push(SubsetUse {
                route: 0,
                canonical: service_host(&host, ns).canonical,
                host: host.clone(),
                subset: subset.clone(),
                at,
            });
            subset
        });
        Ok(Arc::new(
            Destination::new(host, Labels::new()).in_subset(subset, port),
        ))
    }

    pub(super) fn headers(
        &mut self,
        path: &FieldPath,
        h: Option<wire::Headers>,
    ) -> Result<HeaderPolicy> {
        let h = h.unwrap_or_default();
        let (request, authority) = self.header_ops(&path.key("request"), h.request, true)?;
        let (response, _) = self.header_ops(&path.key("response"), h.response, false)?;
        Ok(HeaderPolicy::new(request, response, authority))
    }

    /// The header fields Istio 1.5 removed (`appendHeaders`, `removeRequestHeaders`, ...),
    /// each read as the `headers` operation that replaced it, in the order given.
    pub(super) fn removed_header_fields(
        &mut self,
        path: &FieldPath,
        headers: &mut HeaderPolicy,
        fields: [(&str, Option<wire::HeaderOperations>, bool); 5],
    ) -> Result<()> {
        for (field, ops, request) in fields {
            let Some(ops) = ops else { continue };
            let p = path.key(field);
            let side = if request { "request" } else { "response" };
            let op = if ops.add.is_some() { "add" } else { "remove" };
            self.warn(
                Some(&p),
                format!("`{field}` was removed in Istio 1.5; read as `headers.{side}.{op}`"),
            );
            let (lowered, _) = self.header_ops(&p, Some(ops), request)?;
            headers.extend(request, lowered);
        }
        Ok(())
    }
}

/// A removed `append*Headers` field as the `add` operation that replaced it.
pub(super) fn adding(map: Option<BTreeMap<String, String>>) -> Option<wire::HeaderOperations> {
    map.map(|add| wire::HeaderOperations {
        add: Some(add),
        ..Default::default()
    })
}

/// A removed `remove*Headers` field as the `remove` operation that replaced it.
pub(super) fn removing(list: Option<Vec<String>>) -> Option<wire::HeaderOperations> {
    list.map(|remove| wire::HeaderOperations {
        remove: Some(remove),
        ..Default::default()
    })
}
