//! Every relative link in the repository's Markdown files points at a file or directory
//! of the repository. Links with a scheme (`https:`, `mailto:`) and links within a page
//! (`#section`) are not checked; code blocks and code spans are not links, but a code span
//! or a word that is a Markdown file's name (`FAULTS.md`) must name one of the repository
//! too, next to the page or from the repository's root.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The text of `markdown` outside fenced code blocks and code spans, line by line.
fn prose(markdown: &str) -> Prose {
    let mut fenced = false;
    let mut lines = Vec::new();
    let mut spans = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            let outside: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            spans.extend(named_files(line).into_iter().map(|name| (i + 1, name.to_owned())));
            let definition = trimmed.starts_with('[') && trimmed.contains("]: ");
            if !definition {
                spans.extend(bare_names(&outside).into_iter().map(|name| (i + 1, name.to_owned())));
            }
            lines.push((i + 1, outside));
        }
    }
    Prose { lines, spans }
}

/// The lines of a page outside code blocks, and the Markdown files its code spans name.
#[derive(Debug, Default)]
struct Prose {
    lines: Vec<(usize, String)>,
    spans: Vec<(usize, String)>,
}

/// The code spans of a line outside code blocks that name a Markdown file.
fn named_files(line: &str) -> Vec<&str> {
    let spans = line.split('`').skip(1).step_by(2);
    spans.filter(|s| s.ends_with(".md") && !s.contains(char::is_whitespace)).collect()
}

/// The words of prose (code spans removed) that name a Markdown file outside a link.
fn bare_names(prose: &str) -> Vec<&str> {
    let words = prose.split_whitespace().filter(|w| !w.contains("]("));
    let names = words.map(|w| w.trim_matches(|c: char| "()[],.;:*'\"".contains(c)));
    names.filter(|w| w.ends_with(".md") && w.len() > 3).collect()
}

/// The targets of inline links `[text](target)` and reference definitions `[x]: target`.
fn targets(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        found.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some((_, target)) = trimmed.split_once("]: ") {
            found.push(target.to_owned());
        }
    }
    found
        .into_iter()
        .map(|t| t.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        .map(|t| t.split_whitespace().next().unwrap_or_default().to_owned()) // drop a "title"
        .collect()
}

/// The repository path a link target names, or None when it is not a relative link.
fn local(target: &str) -> Option<&str> {
    let path = target.split('#').next().unwrap_or_default();
    let external = target.contains("://") || target.starts_with("mailto:") || path.is_empty();
    (!external).then_some(path)
}

fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("a Markdown file");
    let dir = file.parent().expect("a directory");
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    let mut broken = Vec::new();
    let prose = prose(&text);
    for (line, text) in &prose.lines {
        for target in targets(text) {
            let Some(path) = local(&target) else { continue };
            let resolved =
                if let Some(from_root) = path.strip_prefix('/') { root().join(from_root) } else { dir.join(path) };
            if !resolved.exists() {
                broken.push(format!("{name}:{line}: {target}"));
            }
        }
    }
    for (line, span) in &prose.spans {
        if !dir.join(span).exists() && !root().join(span).exists() {
            broken.push(format!("{name}:{line}: `{span}` (a Markdown file named in the text)"));
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let mut files = Vec::new();
    markdown_files(&root(), &mut files);
    assert!(files.len() >= 10, "found only {} Markdown files", files.len());
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "links to nothing in the repository:\n{}", broken.join("\n"));
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "See [a](docs/a.md#x) and [b](https://example.org).\n```\n[c](nowhere.md)\n```\n`[d](nowhere.md)` and `missing.md`, see gone.md.\n[f]: other.md \"title\"";
    let prose = prose(text);
    let found: Vec<String> = prose.lines.iter().flat_map(|(_, l)| targets(l)).collect();
    assert_eq!(found, ["docs/a.md#x", "https://example.org", "other.md"]);
    let local: Vec<&str> = found.iter().filter_map(|t| local(t)).collect();
    assert_eq!(local, ["docs/a.md", "other.md"]);
    let spans: Vec<&str> = prose.spans.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(spans, ["missing.md", "gone.md"]);
}
