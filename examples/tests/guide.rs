//! docs/getting-started.md shows code from the examples: each Rust block is preceded by
//! `<!-- code: PATH#REGION -->` and must equal the lines between `// ANCHOR: REGION` and
//! `// ANCHOR_END: REGION` of that file (dedented, nested anchor lines left out). The
//! examples run as tests, so the guide's code is compiled and run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const GUIDE: &str = "docs/getting-started.md";
const MARKER: &str = "<!-- code: ";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// A Rust block of the guide and the region it claims to show.
#[derive(Debug)]
struct Block {
    line: usize,
    path: String,
    region: String,
    code: String,
}

fn blocks(guide: &str) -> Vec<Block> {
    let lines: Vec<&str> = guide.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix(MARKER) else {
            if line.trim_start().starts_with("```rust") {
                let marked = i > 0 && lines[i - 1].starts_with(MARKER);
                assert!(marked, "{GUIDE}:{}: a Rust block without a `{MARKER}PATH#REGION -->` line", i + 1);
            }
            continue;
        };
        let target = rest.strip_suffix(" -->").unwrap_or_else(|| panic!("{GUIDE}:{}: unclosed marker", i + 1));
        let (path, region) = target.split_once('#').unwrap_or_else(|| panic!("{GUIDE}:{}: no #REGION", i + 1));
        assert_eq!(
            lines.get(i + 1).copied(),
            Some("```rust"),
            "{GUIDE}:{}: the marker is not followed by ```rust",
            i + 1
        );
        let end = lines[i + 2..]
            .iter()
            .position(|l| *l == "```")
            .unwrap_or_else(|| panic!("{GUIDE}:{}: unclosed block", i + 1));
        let code = lines[i + 2..i + 2 + end].join("\n");
        blocks.push(Block { line: i + 1, path: path.to_owned(), region: region.to_owned(), code });
    }
    blocks
}

/// The lines of `region` in `source`, dedented, or None when the file has no such region.
fn region(source: &str, name: &str) -> Option<String> {
    let (start, end) = (format!("// ANCHOR: {name}"), format!("// ANCHOR_END: {name}"));
    let mut lines = source.lines().skip_while(|l| l.trim() != start);
    lines.next()?;
    let mut body = Vec::new();
    for line in lines {
        if line.trim() == end {
            return Some(dedent(&body));
        }
        if !line.trim_start().starts_with("// ANCHOR") {
            body.push(line);
        }
    }
    None
}

fn dedent(lines: &[&str]) -> String {
    let indent = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min();
    let indent = indent.unwrap_or(0);
    let out: Vec<&str> = lines.iter().map(|l| l.get(indent..).unwrap_or("")).collect();
    out.join("\n").trim_matches('\n').to_owned()
}

#[test]
fn every_rust_block_of_the_guide_is_an_examples_region() {
    let guide = std::fs::read_to_string(root().join(GUIDE)).expect("the guide");
    let blocks = blocks(&guide);
    assert!(blocks.len() >= 7, "the guide shows {} blocks", blocks.len());
    for block in &blocks {
        let source = std::fs::read_to_string(root().join(&block.path))
            .unwrap_or_else(|e| panic!("{GUIDE}:{}: {}: {e}", block.line, block.path));
        let expected = region(&source, &block.region)
            .unwrap_or_else(|| panic!("{GUIDE}:{}: {} has no region {:?}", block.line, block.path, block.region));
        assert_eq!(
            block.code, expected,
            "{GUIDE}:{}: the block differs from {}#{}; copy the region into the guide",
            block.line, block.path, block.region
        );
    }
}

#[test]
fn the_guide_shows_every_example() {
    let guide = std::fs::read_to_string(root().join(GUIDE)).expect("the guide");
    let shown: BTreeSet<String> = blocks(&guide).into_iter().map(|b| b.path).collect();
    let dir = root().join("examples/examples");
    for entry in std::fs::read_dir(&dir).expect("examples/examples") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        let path = format!("examples/examples/{name}");
        assert!(shown.contains(&path), "{GUIDE} shows nothing of {path}");
    }
}

#[test]
fn a_region_is_found_dedented_without_nested_anchors() {
    let source = "fn f() {\n    // ANCHOR: a\n    let x = 1;\n    // ANCHOR: b\n    if x > 0 {\n        g();\n    }\n    // ANCHOR_END: b\n    // ANCHOR_END: a\n}\n";
    assert_eq!(region(source, "a").as_deref(), Some("let x = 1;\nif x > 0 {\n    g();\n}"));
    assert_eq!(region(source, "b").as_deref(), Some("if x > 0 {\n    g();\n}"));
    assert_eq!(region(source, "c"), None);
}
