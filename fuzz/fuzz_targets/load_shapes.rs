//! Hostile shapes under the default limits: anchors nested around aliases of earlier anchors,
//! match lists shared through aliases, and VirtualServices that delegate to one another (in
//! chains, in circles, many roots to one delegate). Loading must end in rules or an error,
//! within libFuzzer's default time and memory limits.
#![no_main]

use std::fmt::Write;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_mesh::{Context, NeverSampler, RuleSet};

#[derive(Arbitrary, Debug)]
struct Shapes {
    anchors: Vec<Anchor>,
    services: Vec<Service>,
}

/// `a{i}: &a{i} [[...[x, *a{ref}, ...]...]]`, `depth` lists deep.
#[derive(Arbitrary, Debug)]
struct Anchor {
    depth: u8,
    refs: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Service {
    /// Only some services have hosts; the others can only be delegates.
    host: Option<u8>,
    routes: Vec<Route>,
}

#[derive(Arbitrary, Debug)]
struct Route {
    matches: Matches,
    delegate: Option<u8>,
    regex: bool,
}

#[derive(Arbitrary, Debug)]
enum Matches {
    None,
    /// `count` header matches, under an anchor of this route's own.
    New { count: u8 },
    /// The match list of an earlier route, through its alias.
    Alias(u8),
}

fn write_anchors(out: &mut String, anchors: &[Anchor]) {
    out.push_str("status:\n");
    for (i, a) in anchors.iter().enumerate() {
        let depth = usize::from(a.depth % 80);
        let mut items = vec!["x".to_string()];
        items.extend(a.refs.iter().take(8).filter(|_| i > 0).map(|r| format!("*a{}", usize::from(*r) % i)));
        let _ = writeln!(
            out,
            "  a{i}: &a{i} {}{}{}",
            "[".repeat(depth),
            items.join(", "),
            "]".repeat(depth)
        );
    }
}

fn write_service(out: &mut String, n: usize, service: &Service, services: usize, anchored: &mut Vec<usize>) {
    let _ = write!(out, "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs{n}}}\nspec:\n");
    if let Some(h) = service.host {
        let _ = writeln!(out, "  hosts: [svc{}]", h % 4);
    }
    out.push_str("  http:\n");
    for (r, route) in service.routes.iter().take(64).enumerate() {
        out.push_str("  - ");
        match route.matches {
            Matches::None => {}
            Matches::New { count } => {
                let kind = if route.regex { "regex" } else { "exact" };
                let list: Vec<String> = (0..usize::from(count % 64))
                    .map(|m| format!("{{headers: {{x-h: {{{kind}: \"v{m}.*\"}}}}}}"))
                    .collect();
                let _ = write!(out, "match: &m{n}x{r} [{}]\n    ", list.join(", "));
                anchored.push(n * 1000 + r);
            }
            Matches::Alias(k) if !anchored.is_empty() => {
                let id = anchored[usize::from(k) % anchored.len()];
                // Aliases reach only anchors of the same document.
                if id / 1000 == n {
                    let _ = write!(out, "match: *m{n}x{}\n    ", id % 1000);
                }
            }
            Matches::Alias(_) => {}
        }
        match route.delegate {
            Some(d) => {
                let _ = writeln!(out, "delegate: {{name: vs{}}}", usize::from(d) % services);
            }
            None => out.push_str("route: [{destination: {host: svc}}]\n"),
        }
    }
}

fuzz_target!(|shapes: Shapes| {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: anchors}\nspec:\n  hosts: [anchors]\n  http:\n  - route: [{destination: {host: anchors}}]\n",
    );
    write_anchors(&mut yaml, &shapes.anchors);
    let services = shapes.services.len().max(1);
    let mut anchored = Vec::new();
    for (n, service) in shapes.services.iter().enumerate() {
        write_service(&mut yaml, n, service, services, &mut anchored);
    }
    if let Ok(rules) = RuleSet::from_yaml(&yaml) {
        let req = http::Request::get("/").header("x-h", "v1").body(()).unwrap();
        let _ = rules.evaluate(&req, &Context::new().with_host("svc0"), &NeverSampler);
    }
});
