use http::Request;
use tower_mesh::{Context, NeverSampler, RuleSet};
fn main() {
    let rules =
        RuleSet::from_yaml(&std::fs::read_to_string("examples/config/route-to-v2.yaml").unwrap())
            .unwrap();
    let ctx = Context::new().with_target("helloworld-service");
    let req = Request::get("/").header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36").body(()).unwrap();
    let n = 2_000_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(rules.evaluate(std::hint::black_box(&req), &ctx, &NeverSampler));
    }
    println!("{:?} per eval", t.elapsed() / n);
}
