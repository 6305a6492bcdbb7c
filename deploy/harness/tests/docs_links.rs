//! Every relative link in README.md and docs/ points to a file that exists, and every anchor to
//! a heading of that file (as GitHub names headings), so moving a section cannot leave a
//! reader at a dead end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use harness::repository;

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repository().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repository().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut anchors = HashSet::new();
    for line in prose(text) {
        let level = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&level) && line[level..].starts_with(' ') {
            let base = slug(&line[level..]);
            let copies = seen.iter().filter(|s| **s == base).count();
            anchors.insert(if copies == 0 {
                base.clone()
            } else {
                format!("{base}-{copies}")
            });
            seen.push(base);
        }
    }
    anchors
}

/// The targets of `[text](target)` links in prose, outside inline code.
fn links(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let outside_code: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = outside_code.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    targets
}

/// What is broken among the links of the Markdown file `file`, whose text is `text`.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
        if path.is_empty() {
            if !anchors(text).contains(anchor) {
                broken.push(format!("{}: {target}: no such heading", file.display()));
            }
            continue;
        }
        let linked = file.parent().expect("a file has a directory").join(path);
        if !linked.exists() {
            broken.push(format!("{}: {target}: no such file", file.display()));
            continue;
        }
        let is_markdown = linked.extension().is_some_and(|ext| ext == "md");
        if !anchor.is_empty() && is_markdown {
            let linked_text = std::fs::read_to_string(&linked).expect("a linked page is text");
            if !anchors(&linked_text).contains(anchor) {
                broken.push(format!("{}: {target}: no such heading", file.display()));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_in_the_readme_and_docs_resolves() {
    let files = markdown_files();
    assert!(files.len() > 5, "README.md and the docs pages: {files:?}");
    let broken: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("readable Markdown");
            broken_links(file, &text)
        })
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_missing_file_or_heading_is_reported_and_code_is_not_read_as_links() {
    let file = repository().join("README.md");
    let text = "# Title\n## Try it: twice\n[ok](#try-it-twice) [gone](#nowhere)\n\
                [file](docs/no-such-page.md) [docs](docs/README.md#the-order-systems-documentation)\n\
                `[code](not-a-link.md)`\n```\n[fenced](not-a-link-either.md)\n```\n";
    let broken = broken_links(&file, text);
    assert_eq!(broken.len(), 2, "{broken:#?}");
    assert!(broken[0].ends_with("#nowhere: no such heading"));
    assert!(broken[1].ends_with("docs/no-such-page.md: no such file"));
}
