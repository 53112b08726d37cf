//! Following rule files and folders: edits, renames, folders, a ConfigMap volume's swap,
//! bursts and bad updates (the soak of swaps under load is `tests/follow_soak.rs`).

use std::time::Duration;

use tower_mesh::{FollowOptions, MeshRules, RuleSet};

mod configmap;
use configmap::{Dir, INVALID, Volume, eventually};

/// A VirtualService for `reviews` whose only route is named `name`.
fn rules(name: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - name: {name}\n    route: [{{destination: {{host: reviews}}}}]\n"
    )
}

/// The name of the route the rules in force give a request for `reviews`.
fn route(rules: &MeshRules) -> Option<String> {
    let req = http::Request::get("/").body(()).unwrap();
    let ctx = tower_mesh::Context::new().with_host("reviews");
    rules
        .current()
        .evaluate(&req, &ctx, &tower_mesh::NeverSampler)
        .route_name()
        .map(str::to_string)
}

fn quick() -> FollowOptions {
    FollowOptions::default().debounce(Duration::from_millis(50))
}

#[test]
fn edits_renames_and_folders_are_followed() {
    let dir = Dir::new("edits");
    let file = dir.0.join("rules.yaml");
    std::fs::write(&file, rules("one")).unwrap();
    let mesh = MeshRules::new(RuleSet::from_files([&file]).unwrap());
    let follower = mesh.follow_with([&file], quick()).unwrap();
    assert_eq!(route(&mesh).as_deref(), Some("one"));

    // An ordinary edit.
    std::fs::write(&file, rules("two")).unwrap();
    assert!(eventually(|| route(&mesh).as_deref() == Some("two")));
    // An editor's write to a temporary file, renamed over the original.
    let tmp = dir.0.join(".rules.yaml.swp");
    std::fs::write(&tmp, rules("three")).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    assert!(eventually(|| route(&mesh).as_deref() == Some("three")));
    assert_eq!(follower.stats().rejected, 0);
    drop(follower);

    // A folder: files added and removed.
    let folder = Dir::new("folder");
    std::fs::write(folder.0.join("a.yaml"), rules("a")).unwrap();
    let mesh = MeshRules::new(RuleSet::empty());
    let _follower = mesh.follow_with([&folder.0], quick()).unwrap();
    assert_eq!(
        route(&mesh).as_deref(),
        Some("a"),
        "read once when following starts"
    );
    std::fs::remove_file(folder.0.join("a.yaml")).unwrap();
    assert!(eventually(|| route(&mesh).is_none()));
    std::fs::write(folder.0.join("b.yml"), rules("b")).unwrap();
    assert!(eventually(|| route(&mesh).as_deref() == Some("b")));
}

/// Five kubelet swaps, each seen once, after the swap, with `options`.
fn five_configmap_swaps(name: &str, options: FollowOptions, polling: bool) {
    let mut cm = Volume::new(name, &[("rules.yaml", &rules("v0"))]);
    let mesh = MeshRules::new(RuleSet::from_files([cm.path("rules.yaml")]).unwrap());
    let follower = mesh.follow_with([&cm.dir.0], options).unwrap();
    assert_eq!(follower.is_polling(), polling);
    for i in 1..=5 {
        cm.update(&[("rules.yaml", &rules(&format!("v{i}")))]);
        let want = format!("v{i}");
        assert!(
            eventually(|| route(&mesh) == Some(want.clone())),
            "swap {i}"
        );
        assert!(eventually(|| follower.stats().applied == i));
    }
    // A reload that reads what is in force already is not applied again, so five swaps make
    // exactly five reloads, whatever events the swap produced.
    assert_eq!(follower.stats().applied, 5, "one reload per swap");
    assert_eq!(follower.stats().rejected, 0);
}

#[test]
fn a_configmap_swap_is_seen_once_after_the_swap() {
    five_configmap_swaps("configmap", quick(), false);
}

#[test]
fn a_polled_configmap_swap_is_seen_once_after_the_swap() {
    five_configmap_swaps(
        "configmap-polled",
        quick().poll(Duration::from_millis(20)),
        true,
    );
}

#[test]
fn a_burst_is_one_reload_and_a_bad_update_keeps_the_rules() {
    let dir = Dir::new("burst");
    let file = dir.0.join("rules.yaml");
    std::fs::write(&file, rules("start")).unwrap();
    let mesh = MeshRules::new(RuleSet::from_files([&file]).unwrap());
    let follower = mesh
        .follow_with(
            [&file],
            FollowOptions::default().debounce(Duration::from_millis(200)),
        )
        .unwrap();
    for i in 0..10 {
        std::fs::write(&file, rules(&format!("burst-{i}"))).unwrap();
    }
    // Had the burst been read before it ended, an earlier write would have been applied first.
    assert!(eventually(
        || route(&mesh).as_deref() == Some("burst-9") && follower.stats().applied >= 1
    ));
    assert_eq!(
        follower.stats().applied,
        1,
        "ten writes within the debounce window"
    );

    let before = mesh.version();
    std::fs::write(&file, INVALID).unwrap();
    assert!(eventually(|| follower.stats().rejected == 1));
    assert_eq!(mesh.version(), before, "the rules in force stay");
    assert_eq!(route(&mesh).as_deref(), Some("burst-9"));
    std::fs::write(&file, rules("fixed")).unwrap();
    assert!(eventually(|| route(&mesh).as_deref() == Some("fixed")));
}

/// A VirtualService for `reviews` with `n` routes for paths `/p0`... and a catch-all last,
/// all named after `name`.
fn many_routes(name: &str, n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: {name}-{i}\n    match: [{{uri: {{exact: /p{i}}}}}]\n    route: [{{destination: {{host: reviews}}}}]\n"
        ));
    }
    yaml.push_str(&format!(
        "  - name: {name}\n    route: [{{destination: {{host: reviews}}}}]\n"
    ));
    yaml
}

#[test]
fn a_file_written_in_place_is_put_in_force_only_whole() {
    use std::io::Write;
    let dir = Dir::new("in-place");
    let file = dir.0.join("rules.yaml");
    std::fs::write(&file, rules("old")).unwrap();
    let mesh = MeshRules::new(RuleSet::from_files([&file]).unwrap());
    let follower = mesh
        .follow_with([&file], quick().settle(Duration::from_secs(3)))
        .unwrap();

    // Truncated in place, as a writer that opens with O_TRUNC leaves it before it writes.
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .unwrap();
    assert!(
        eventually(|| follower.stats().deferred >= 1),
        "the change waited to settle"
    );
    assert!(
        eventually(|| follower.stats().rejected == 1),
        "the empty file was refused"
    );
    assert_eq!(route(&mesh).as_deref(), Some("old"), "after truncation");
    assert_eq!(mesh.current().table().route_count(), 1);

    // Half written: 99 of the 200 routes, without the catch-all.
    let whole = many_routes("new", 200);
    let cut = whole.find("  - name: new-99\n").unwrap();
    let deferred = follower.stats().deferred;
    writer.write_all(&whole.as_bytes()[..cut]).unwrap();
    writer.flush().unwrap();
    assert!(
        eventually(|| follower.stats().deferred > deferred),
        "the half write waited"
    );
    assert_eq!(route(&mesh).as_deref(), Some("old"), "after a half write");
    assert_eq!(follower.stats().applied, 0);

    // The rest: put in force whole once it has settled.
    writer.write_all(&whole.as_bytes()[cut..]).unwrap();
    drop(writer);
    assert!(eventually(|| route(&mesh).as_deref() == Some("new")));
    assert_eq!(mesh.current().table().route_count(), 201);
    // Counted just after the rules are put in force.
    assert!(
        eventually(|| follower.stats().applied == 1),
        "{:?}",
        follower.stats()
    );
    println!(
        "in force after truncation and after a half write: old (1 route); once whole: new (201 routes); {:?}",
        follower.stats()
    );
}

#[test]
fn a_followed_folder_that_goes_and_comes_back_is_followed_again() {
    let root = Dir::new("comes-back");
    let folder = root.0.join("rules");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("a.yaml"), rules("a")).unwrap();
    let mesh = MeshRules::new(RuleSet::empty());
    let follower = mesh.follow_with([&folder], quick()).unwrap();
    assert_eq!(route(&mesh).as_deref(), Some("a"));

    std::fs::remove_dir_all(&folder).unwrap();
    assert!(
        eventually(|| follower.stats().rejected >= 1),
        "the missing folder was refused"
    );
    assert_eq!(
        route(&mesh).as_deref(),
        Some("a"),
        "the rules in force stay"
    );

    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("b.yaml"), rules("b")).unwrap();
    assert!(
        eventually(|| route(&mesh).as_deref() == Some("b")),
        "followed again"
    );
    std::fs::write(folder.join("b.yaml"), rules("c")).unwrap();
    assert!(
        eventually(|| route(&mesh).as_deref() == Some("c")),
        "and again"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_by_the_loader_and_the_follower() {
    let dir = Dir::new("fifo");
    let fifo = dir.0.join("rules.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let err = RuleSet::from_files([&fifo]).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let mesh = MeshRules::new(RuleSet::from_yaml(&rules("kept")).unwrap());
    let follower = mesh.follow_with([&fifo], quick()).unwrap();
    assert_eq!(follower.stats().rejected, 1);
    assert_eq!(route(&mesh).as_deref(), Some("kept"));
}
