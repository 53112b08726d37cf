//! The cluster watch (feature `kube`) against a stand-in API server on loopback that speaks
//! the list and watch protocol: the initial list, updates, deletions, an invalid object, a
//! `410 Gone` relist, and the API server going away and coming back.

mod apiserver;
#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use apiserver::ApiServer;
use common::Lines;
use serde_json::{Value, json};
use tower_mesh::{ClusterOptions, ClusterWatch, MeshRules, RuleSet};

const REVIEWS: &str = "reviews.shop.svc.cluster.local";
const RATINGS: &str = "ratings.shop.svc.cluster.local";

/// A VirtualService `name` in `namespace` sending every call for `host` to `subset` through
/// a route named after the subset; `weight` is the destination's weight.
fn virtual_service(namespace: &str, name: &str, host: &str, subset: &str, weight: i64) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": [host], "http": [{"name": subset, "route": [
            {"destination": {"host": host, "subset": subset}, "weight": weight}]}]}
    })
}

fn destination_rule(host: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": host.split('.').next().unwrap(), "namespace": "shop"},
        "spec": {"host": host, "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}]}
    })
}

/// The name of the route the rules in force give a call for `host`.
fn route(rules: &MeshRules, host: &str) -> Option<String> {
    let req = http::Request::get("/").body(()).unwrap();
    let ctx = tower_mesh::Context::new().with_host(host);
    rules
        .current()
        .evaluate(&req, &ctx, &tower_mesh::NeverSampler)
        .route_name()
        .map(str::to_string)
}

/// Waits (up to 20 s) until `check` holds; false if it never did.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

fn quick() -> ClusterOptions {
    ClusterOptions::default()
        .debounce(Duration::from_millis(20))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A server holding the DestinationRules of both hosts and a VirtualService sending
/// `reviews` to v1; the VirtualService's `resourceVersion`.
async fn cluster() -> (ApiServer, u64) {
    let server = ApiServer::start().await;
    server.apply("destinationrules", destination_rule(REVIEWS));
    server.apply("destinationrules", destination_rule(RATINGS));
    let rv = server.apply(
        "virtualservices",
        virtual_service("shop", "reviews", REVIEWS, "v1", 100),
    );
    (server, rv)
}

fn count(requests: &[String], line: &str) -> usize {
    requests.iter().filter(|r| *r == line).count()
}

#[tokio::test]
async fn the_watch_lists_then_follows_updates_and_deletions() {
    let (server, rv) = cluster().await;
    let mesh = MeshRules::new(RuleSet::empty());
    let watch = mesh.watch_cluster_with(server.client(), quick()).unwrap();

    // The initial list.
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    assert!(watch.stats().synced);
    assert_eq!(watch.stats().applied, 1);
    assert!(
        mesh.version().ends_with(&format!("@{rv}")),
        "{}",
        mesh.version()
    );
    let listed = mesh.version();

    // An update, seen through the watch.
    let rv = server.apply(
        "virtualservices",
        virtual_service("shop", "reviews", REVIEWS, "v2", 100),
    );
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);
    assert!(mesh.version().ends_with(&format!("@{rv}")));
    assert_ne!(mesh.version(), listed);

    // A bookmark changes nothing; a deletion takes the route away.
    server.bookmark();
    server.delete("virtualservices", "shop", "reviews");
    assert!(eventually(|| route(&mesh, REVIEWS).is_none()).await);
    assert_eq!(watch.stats().applied, 3);

    // One list per kind, then watches from the list's revision (102: the two DRs and the VS).
    let requests = server.requests();
    assert_eq!(count(&requests, "LIST virtualservices"), 1, "{requests:?}");
    assert_eq!(count(&requests, "LIST destinationrules"), 1, "{requests:?}");
    assert_eq!(
        count(&requests, "WATCH virtualservices from 103"),
        1,
        "{requests:?}"
    );
    assert_eq!(watch.stats().watch_errors, 0);
}

#[tokio::test]
async fn a_burst_of_changes_is_one_rule_set() {
    let (server, _) = cluster().await;
    let mesh = MeshRules::new(RuleSet::empty());
    let options = quick().debounce(Duration::from_millis(300));
    let watch = mesh.watch_cluster_with(server.client(), options).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    for subset in ["v2", "v1", "v2", "v1", "v2"] {
        server.apply(
            "virtualservices",
            virtual_service("shop", "reviews", REVIEWS, subset, 100),
        );
    }
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);
    assert_eq!(
        watch.stats().applied,
        2,
        "one for the list, one for the burst"
    );
}

// One thread, so that the watch's task logs to this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn an_invalid_object_is_left_out_and_the_rest_apply() {
    let lines = Lines::default();
    let _guard = tracing::subscriber::set_default(lines.subscriber(tracing::Level::WARN));

    let (server, _) = cluster().await;
    // A negative weight: Istio's webhook would have refused it.
    server.apply(
        "virtualservices",
        virtual_service("shop", "ratings", RATINGS, "v1", -1),
    );
    let mesh = MeshRules::new(RuleSet::empty());
    let watch = mesh.watch_cluster_with(server.client(), quick()).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    assert_eq!(route(&mesh, RATINGS), None);
    assert_eq!(watch.stats().left_out, 1);
    let log = lines.text();
    assert!(
        log.contains(
            "VirtualService shop/ratings left out of the rules: spec.http[0].route[0].weight:"
        ),
        "{log}"
    );

    // Another change applies; the invalid object, unchanged, is not reported again.
    server.apply(
        "virtualservices",
        virtual_service("shop", "reviews", REVIEWS, "v2", 100),
    );
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);
    assert_eq!(watch.stats().left_out, 1);
    assert_eq!(lines.text().matches("shop/ratings left out").count(), 1);

    // Once corrected, it applies.
    server.apply(
        "virtualservices",
        virtual_service("shop", "ratings", RATINGS, "v1", 100),
    );
    assert!(eventually(|| route(&mesh, RATINGS).as_deref() == Some("v1")).await);
    assert_eq!(route(&mesh, REVIEWS).as_deref(), Some("v2"));
}

#[tokio::test]
async fn a_410_gone_lists_again() {
    let (server, _) = cluster().await;
    let mesh = MeshRules::new(RuleSet::empty());
    let watch = mesh.watch_cluster_with(server.client(), quick()).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    assert!(eventually(|| count(&server.requests(), "WATCH virtualservices from 103") == 1).await);

    // The history is compacted: open watches end with 410, and so does a watch resumed from
    // before; the change made meanwhile arrives with the new list.
    server.expire();
    server.apply(
        "virtualservices",
        virtual_service("shop", "reviews", REVIEWS, "v2", 100),
    );
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);
    let requests = server.requests();
    assert!(
        count(&requests, "LIST virtualservices") >= 2,
        "{requests:?}"
    );
    assert!(
        count(&requests, "LIST destinationrules") >= 2,
        "{requests:?}"
    );
    assert!(watch.stats().watch_errors >= 2, "{:?}", watch.stats());
}

#[tokio::test]
async fn the_rules_stay_while_the_api_server_is_away() {
    let (mut server, _) = cluster().await;
    let mesh = MeshRules::new(RuleSet::empty());
    let watch = mesh.watch_cluster_with(server.client(), quick()).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    let version = mesh.version();

    server.stop();
    // The watch tries again, with back-off, and fails each time.
    let errors = watch.stats().watch_errors;
    assert!(eventually(|| watch.stats().watch_errors >= errors + 3).await);
    assert_eq!(mesh.version(), version, "the rules in force stay");
    assert_eq!(route(&mesh, REVIEWS).as_deref(), Some("v1"));

    // Changed while the server was away (through another API server, say); seen when it is
    // back, by resuming the watch from the last resourceVersion, without listing again.
    let rv = server.apply(
        "virtualservices",
        virtual_service("shop", "reviews", REVIEWS, "v2", 100),
    );
    server.restart().await;
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);
    assert!(mesh.version().ends_with(&format!("@{rv}")));
    let requests = server.requests();
    assert_eq!(count(&requests, "LIST virtualservices"), 1, "{requests:?}");
    assert!(
        count(&requests, "WATCH virtualservices from 103") >= 2,
        "{requests:?}"
    );
}

#[tokio::test]
async fn one_namespace_with_the_gateway_api() {
    let (server, _) = cluster().await;
    server.apply(
        "virtualservices",
        virtual_service("other", "ratings", RATINGS, "v1", 100),
    );
    server.apply(
        "httproutes",
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "details", "namespace": "shop"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "details"}],
                     "rules": [{"name": "to-v2", "backendRefs": [{"name": "details-v2", "port": 9080}]}]},
            "status": {"parents": []}
        }),
    );
    let mesh = MeshRules::new(RuleSet::empty());
    let options = quick().namespace("shop").gateway_api(true);
    let watch: ClusterWatch = mesh.watch_cluster_with(server.client(), options).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    let details = route(&mesh, "details.shop.svc.cluster.local");
    assert!(details.is_some_and(|name| name.contains("to-v2")));
    assert_eq!(
        route(&mesh, RATINGS),
        None,
        "namespace `other` is not watched"
    );
    let requests = server.requests();
    for line in [
        "LIST virtualservices in shop",
        "LIST destinationrules in shop",
        "LIST httproutes in shop",
        "LIST grpcroutes in shop",
    ] {
        assert_eq!(count(&requests, line), 1, "{requests:?}");
    }
    assert_eq!(watch.stats().left_out, 0);
}

#[test]
fn the_watch_needs_a_tokio_runtime() {
    let mesh = MeshRules::new(RuleSet::empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async { ApiServer::start().await.client() });
    let err = mesh.watch_cluster(client).unwrap_err();
    assert_eq!(err.to_string(), "the cluster watch needs a tokio runtime");
}

/// A tenant's VirtualService for its own host with `routes` routes, created at `created`.
fn tenant(i: usize, routes: usize, created: &str) -> Value {
    let http: Vec<Value> = (0..routes)
        .map(|r| {
            json!({"match": [{"uri": {"exact": format!("/p{r}")}}],
                        "route": [{"destination": {"host": format!("t{i}")}}]})
        })
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": format!("t{i}"), "namespace": "tenants",
                     "creationTimestamp": created},
        "spec": {"hosts": [format!("t{i}.tenants.svc.cluster.local")], "http": http}
    })
}

/// Rules with no routes and at most `max_routes` routes: the watch loads with them.
fn limited(max_routes: usize) -> MeshRules {
    let limits = tower_mesh::Limits {
        max_routes,
        ..tower_mesh::Limits::default()
    };
    let options = tower_mesh::LoadOptions::default().with_limits(limits);
    MeshRules::new(tower_mesh::Loader::new().options(options).load().unwrap())
}

#[tokio::test]
async fn tenants_past_the_limits_are_left_out_newest_first_and_the_rest_apply() {
    let lines = Lines::default();
    let _guard = tracing::subscriber::set_default(lines.subscriber(tracing::Level::WARN));
    let server = ApiServer::start().await;
    let mut owner = virtual_service("shop", "reviews", REVIEWS, "v1", 100);
    owner["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let mut dr = destination_rule(REVIEWS);
    dr["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    server.apply("destinationrules", dr);
    server.apply("virtualservices", owner.clone());
    // 21 tenants of 100 routes (created after the owner, t20 last) against 2,000 routes: with
    // all of them the set would have 2,101; as one text it once failed whole, naming nobody.
    for i in 0..21 {
        server.apply(
            "virtualservices",
            tenant(i, 100, &format!("2026-02-{:02}T00:00:00Z", i + 1)),
        );
    }
    let mesh = limited(2_000);
    let watch = mesh.watch_cluster_with(server.client(), quick()).unwrap();
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v1")).await);
    assert_eq!(
        mesh.current().table().route_count(),
        1 + 19 * 100,
        "two tenants left out"
    );
    assert_eq!(watch.stats().left_out, 2);
    let text = lines.text();
    for left in ["t19", "t20"] {
        assert!(
            text.contains(&format!("VirtualService tenants/{left} left out of the rules: the rules would be over a limit with it")),
            "{text}"
        );
    }
    assert!(!text.contains("tenants/t18 left out"), "{text}");

    // The owner's change applies while the tenants stay over the limit.
    owner["spec"]["http"][0]["name"] = json!("v2");
    owner["spec"]["http"][0]["route"][0]["destination"]["subset"] = json!("v2");
    server.apply("virtualservices", owner);
    assert!(eventually(|| route(&mesh, REVIEWS).as_deref() == Some("v2")).await);

    // A replica that starts now converges on the same set.
    let replica = limited(2_000);
    let _watch = replica
        .watch_cluster_with(server.client(), quick())
        .unwrap();
    assert!(
        eventually(|| replica.version() == mesh.version()).await,
        "{} {}",
        replica.version(),
        mesh.version()
    );
    assert_eq!(route(&replica, REVIEWS).as_deref(), Some("v2"));
    assert_eq!(replica.current().table().route_count(), 1 + 19 * 100);
}

/// An HTTPRoute `name` for Service `details` whose one rule is named `name` too.
fn details_route(name: &str, created: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "details"}],
                 "rules": [{"name": name, "backendRefs": [{"name": "details", "port": 9080}]}]}
    })
}

#[tokio::test]
async fn tied_http_routes_are_ordered_by_creation_as_from_a_file() {
    // Two routes with the same match: the older wins, though its name sorts last.
    let older = details_route("zeta", "2026-01-01T00:00:00Z");
    let newer = details_route("alpha", "2026-03-01T00:00:00Z");
    let from_file = RuleSet::from_yaml(&format!("{older}\n---\n{newer}")).unwrap();
    let from_file = MeshRules::new(from_file);
    let server = ApiServer::start().await;
    server.apply("httproutes", newer);
    server.apply("httproutes", older);
    let mesh = MeshRules::new(RuleSet::empty());
    let _watch = mesh
        .watch_cluster_with(server.client(), quick().gateway_api(true))
        .unwrap();
    let host = "details.shop.svc.cluster.local";
    assert!(eventually(|| route(&mesh, host).is_some()).await);
    assert!(
        route(&mesh, host).unwrap().contains("zeta"),
        "{:?}",
        route(&mesh, host)
    );
    assert_eq!(route(&mesh, host), route(&from_file, host));
}
