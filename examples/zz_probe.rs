fn main() {
    let text =
        std::fs::read_to_string("/work/shared/istio-samples/virtual-service-reviews-80-20.yaml")
            .unwrap();
    let dr =
        std::fs::read_to_string("/work/shared/istio-samples/destination-rule-all.yaml").unwrap();
    let rules = tower_mesh::Loader::new()
        .text(text)
        .text(dr)
        .load()
        .unwrap();
    let req = http::Request::get("/reviews/0").body(()).unwrap();
    let ctx = tower_mesh::Context::new().with_host("reviews");
    let e = rules.explain(&req, &ctx, &tower_mesh::SeededSampler::new(7));
    println!("{e}");
}
