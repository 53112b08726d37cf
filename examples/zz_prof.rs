#[path = "../benches/common/mod.rs"]
mod common;
fn main() {
    let text = common::generated_rules(1000);
    let t = std::time::Instant::now();
    for _ in 0..5 { std::hint::black_box(tower_mesh::RuleSet::from_yaml(&text).unwrap()); }
    println!("{:?} per load", t.elapsed() / 5);
}
