//! `git mso board`: the terminal board and the HTML page, read back with a
//! real HTML parser (and rendered by headless Chromium where it is installed).

use scraper::{Html, Selector};

use crate::common::TestRepo;

fn select<'a>(page: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    page.select(&Selector::parse(css).unwrap()).collect()
}

fn text(element: &scraper::ElementRef<'_>) -> String {
    element.text().collect::<String>()
}

/// A pipeline with something in every section: queued, completed, failed,
/// approved and rejected orders, and a title that tries to be markup.
fn pipeline() -> TestRepo {
    let repo = TestRepo::initialized();
    let ok = repo.crew("ok.sh", "echo \"$MSO_ROLE\" >> work.txt");
    let fail = repo.crew("fail.sh", "echo 'the build broke' >&2\nexit 3");
    repo.set_crews(&[("PLN", &ok), ("BLD", &ok), ("TST", &ok)]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--title", "Add <script>alert(1)</script> page"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "Bump deps"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.dispatch(&["--once"]);
    repo.set_crews(&[("BLD", &fail)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "Crash on save"]);
    repo.dispatch_failing(&["--once"]);
    repo.ok(&["order", "new", "--title", "Dark mode"]);
    repo.set_crews(&[("PLN", &ok)]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "reject", "FTR-0002", "--reason", "plan misses the settings page"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "Still queued"]);
    repo
}

#[test]
fn the_terminal_board_lists_open_orders_by_role() {
    let repo = pipeline();
    let out = repo.ok(&["board"]);
    assert!(out.contains("BLD Shipwright  queued 1"), "{out}");
    assert!(out.lines().any(|l| l.contains("CHR-0002") && l.contains("failed")), "{out}");
    assert!(!out.contains("CHR-0001"), "a finished order is listed without --all: {out}");
    assert!(repo.ok(&["board", "--all"]).contains("CHR-0001"));
    assert!(out.contains("done: 2 completed"), "{out}");
}

#[test]
fn the_page_shows_every_order_voyage_review_failure_and_transaction_and_runs_nothing() {
    let repo = pipeline();
    let file = repo.root().join("board.html");
    let said = repo.ok(&["board", "--html", file.to_str().unwrap()]);
    assert!(said.contains("5 orders"), "{said}");
    let source = std::fs::read_to_string(&file).unwrap();
    let page = Html::parse_document(&source);
    assert!(page.errors.is_empty(), "the page does not parse cleanly: {:?}", page.errors);
    assert_eq!(text(&select(&page, "title")[0]), "git mso board");
    // Nothing runs, nothing is fetched.
    assert!(select(&page, "script").is_empty(), "the page has a script element");
    assert!(select(&page, "link, img, iframe, object").is_empty());
    assert!(!source.contains("http://") && !source.contains("https://"), "the page names the network");
    // Every order once, as a card; the markup in a title stays text.
    let cards = select(&page, ".card");
    assert_eq!(cards.len(), 5);
    let first = select(&page, "#FTR-0001")[0];
    assert!(text(&first).contains("Add <script>alert(1)</script> page"), "{}", text(&first));
    assert!(first.value().classes().any(|c| c == "s-completed"));
    let failed = select(&page, "#CHR-0002")[0];
    assert!(
        text(&failed).contains("the build broke") || text(&failed).contains("exited with status 3"),
        "{}",
        text(&failed)
    );
    let columns: Vec<String> = select(&page, ".col h3").iter().map(text).collect();
    assert!(columns[0].starts_with("PLN") && columns.last().unwrap().starts_with("Done"), "{columns:?}");
    // Voyages, reviews with who and when, failures with their reasons, the timeline.
    let tables = select(&page, "table");
    assert_eq!(tables.len(), 4);
    let rows = |i: usize| {
        select(&page, "table").get(i).map(|t| t.select(&Selector::parse("tbody tr").unwrap()).count()).unwrap()
    };
    let voyages = repo.json(&["voyage", "list", "--json"]).as_array().unwrap().len();
    assert_eq!(rows(0), voyages);
    let reviews = text(&tables[1]);
    assert!(reviews.contains("approved") && reviews.contains("rejected") && reviews.contains("alice"), "{reviews}");
    assert!(reviews.contains("plan misses the settings page"), "{reviews}");
    assert!(text(&tables[2]).contains("CHR-0002"), "{}", text(&tables[2]));
    let commits = repo.git(&["rev-list", "--count", "refs/mso/ledger"]).trim().parse::<usize>().unwrap();
    assert_eq!(rows(3), commits.min(200));
}

#[test]
#[allow(clippy::result_large_err)]
fn a_thousand_orders_make_one_readable_page() {
    let repo = TestRepo::initialized();
    let mut store = git_mso::store::Store::discover(&repo.path).unwrap();
    store.pin_clock(crate::common::NOW_SECS);
    store
        .transact(|tx| {
            let kind: git_mso::core::Kind = "CHR".parse().unwrap();
            let voyage = tx.counters().next_voyage()?;
            let base = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
            tx.push(git_mso::core::EventBody::VoyageCreated { voyage, base, target: None })?;
            for i in 0..999 {
                let id = tx.counters().next_order(&kind)?;
                tx.push(git_mso::core::EventBody::OrderCreated {
                    order: id,
                    title: format!("order number {i}"),
                    brief: String::new(),
                    acceptance: vec![],
                    roles: vec!["BLD".parse().unwrap()],
                    gates: vec![],
                    voyage,
                    budget_micros: None,
                })?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
        .unwrap();
    let file = repo.root().join("board.html");
    repo.ok(&["board", "--html", file.to_str().unwrap()]);
    let source = std::fs::read_to_string(&file).unwrap();
    let page = Html::parse_document(&source);
    assert_eq!(select(&page, ".card").len(), 999);
    assert!(source.len() < 1_000_000, "{} bytes for 999 orders", source.len());
    assert!(source.contains("@media print"), "no print layout");
    // A relative FILE is relative to where the command runs, -C included.
    std::fs::create_dir_all(repo.path.join("sub")).unwrap();
    repo.ok(&["-C", "sub", "board", "--html", "here.html"]);
    assert!(repo.path.join("sub/here.html").exists());
}

#[test]
fn headless_chromium_renders_the_page() {
    let Some(chromium) =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: Chromium is not installed here (apt-get install chromium)");
        return;
    };
    let repo = pipeline();
    let file = repo.root().join("board.html");
    repo.ok(&["board", "--html", file.to_str().unwrap()]);
    let shot = repo.root().join("board.png");
    let out = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", file.display()))
        .env("HOME", &repo.home)
        .output()
        .unwrap();
    let png =
        std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    if let Ok(keep) = std::env::var("MSO_BOARD_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
