//! Rule sets shared by the benches.

#![allow(dead_code)]

/// A VirtualService with `n` routes; route `i` matches `x-tenant` (exact `tenant-i` for even
/// `i`, regex `tenant-[0-9]+-i` for odd `i`) and the uri prefix `/api/`.
pub(crate) fn generated_rules(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: tenants}\nspec:\n  hosts: [tenants]\n  http:\n",
    );
    for i in 0..n {
        let header = if i % 2 == 0 {
            format!("{{exact: \"tenant-{i}\"}}")
        } else {
            format!("{{regex: \"tenant-[0-9]+-{i}\"}}")
        };
        yaml.push_str(&format!(
            "  - name: r{i}\n    match:\n    - headers: {{x-tenant: {header}}}\n      uri: {{prefix: /api/}}\n    route:\n    - destination: {{host: tenant-{i}}}\n"
        ));
    }
    yaml
}

/// A header value only route `i` matches.
pub(crate) fn tenant_value(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("tenant-{i}")
    } else {
        format!("tenant-4242-{i}")
    }
}

/// The walkthrough's Chrome rule and its default rule: what the layer benches run.
pub(crate) const WALKTHROUGH_WITH_DEFAULT: &str = concat!(
    include_str!("../../examples/config/route-to-v2.yaml"),
    "---\n",
    include_str!("../../examples/config/helloworld-default.yaml")
);

/// The request the layer benches send: the default rule takes it.
pub(crate) fn layer_request() -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get("/api/items")
        .header("user-agent", "curl/8.4.0")
        .header("x-tenant", "tenant-4242-999")
        .body(http_body_util::Full::default())
        .unwrap()
}

/// A current-thread runtime and a hello service, as the layer benches drive them.
pub(crate) fn runtime_and_hello() -> (
    tokio::runtime::Runtime,
    impl tower::Service<
        http::Request<http_body_util::Full<bytes::Bytes>>,
        Response = http::Response<http_body_util::Full<bytes::Bytes>>,
        Error = std::convert::Infallible,
    > + Copy,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hello = tower::service_fn(|_req| async {
        let body = http_body_util::Full::new(bytes::Bytes::from_static(b"Hello World!"));
        Ok::<_, std::convert::Infallible>(http::Response::new(body))
    });
    (rt, hello)
}
