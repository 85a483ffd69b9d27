//! `tooken scan PATH…`: finds Tooken API keys and tokens leaked in files.
//!
//! A candidate is a maximal run of word characters (`[A-Za-z0-9_]`) shaped
//! like `<prefix>_<live|test>_<36 base62>`; it is reported only when its
//! checksum is right ([`tooken_core::credential::is_well_formed`]), so random
//! strings of the same shape are not. Findings show the credential's hint,
//! never the secret: scan output ends up in CI logs.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tooken_core::credential::{is_well_formed, BODY_LEN};
use tooken_core::{Credential, CredentialKind};

use crate::outcome::{emit, emit_json, Failure, Outcome};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print a JSON array of findings: {path, line, kind, hint}.
    #[arg(long)]
    json: bool,
    /// Also scan what .gitignore and .ignore files exclude.
    #[arg(long)]
    no_ignore: bool,
}

/// A credential found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: String,
    /// From 1.
    pub line: usize,
    /// `api_key` or `token`.
    pub kind: &'static str,
    /// Prefix, mode and last four characters, e.g. `tok_live_…9fQz`.
    pub hint: String,
}

/// Files at or above which a progress bar is worth showing.
const LARGE_TREE_FILES: usize = 2_000;
const LARGE_TREE_BYTES: u64 = 256 * 1024 * 1024;
/// A file with a NUL byte in its first bytes is taken for binary (as git does).
const BINARY_SNIFF: usize = 8_000;

pub fn run(args: ScanArgs) -> Result<Outcome, Failure> {
    for path in &args.paths {
        if let Err(e) = std::fs::metadata(path) {
            return Err(Failure::usage(format!(
                "cannot scan {}: {e}",
                path.display()
            )));
        }
    }
    let mut errors = 0usize;
    let (files, total_bytes) = list_files(&args.paths, args.no_ignore, &mut errors);

    let progress = (std::io::stderr().is_terminal()
        && (files.len() >= LARGE_TREE_FILES || total_bytes >= LARGE_TREE_BYTES))
        .then(|| {
            let bar = indicatif::ProgressBar::new(files.len() as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "scanning {bar:40} {pos}/{len} files ({eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });

    let mut findings = Vec::new();
    let mut scanned = 0usize;
    for file in &files {
        match scan_file(file) {
            Ok(Some(found)) => {
                scanned += 1;
                if !args.json && !found.is_empty() {
                    let text: String = found
                        .iter()
                        .map(|f| format!("{}:{}: {}\n", f.path, f.line, f.hint))
                        .collect();
                    match &progress {
                        Some(bar) => bar.suspend(|| emit(&text))?,
                        None => emit(&text)?,
                    }
                }
                findings.extend(found);
            }
            // Binary: skipped.
            Ok(None) => {}
            Err(e) => {
                errors += 1;
                let message = format!("warning: cannot read {}: {e}", file.display());
                match &progress {
                    Some(bar) => bar.println(message),
                    None => eprintln!("{message}"),
                }
            }
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    if args.json {
        emit_json(&findings)?;
    }
    let files_with = {
        let mut paths: Vec<&str> = findings.iter().map(|f| f.path.as_str()).collect();
        paths.dedup();
        paths.len()
    };
    if !findings.is_empty() {
        eprintln!(
            "Found {} Tooken credential(s) in {files_with} file(s). Revoke or regenerate them: \
             removing them from the files does not make them safe.",
            findings.len()
        );
        Ok(Outcome::Negative)
    } else if errors > 0 {
        Err(Failure::usage(format!(
            "no credentials found, but {errors} path(s) could not be read"
        )))
    } else {
        eprintln!("No Tooken credentials found in {scanned} file(s).");
        Ok(Outcome::Success)
    }
}

/// Every file under `roots`, honouring .gitignore and .ignore (also outside
/// a git repository) unless `no_ignore`; hidden files such as `.env` are
/// scanned, the `.git` directory is not. Returns the files and their size.
fn list_files(roots: &[PathBuf], no_ignore: bool, errors: &mut usize) -> (Vec<PathBuf>, u64) {
    let mut walk = ignore::WalkBuilder::new(&roots[0]);
    for root in &roots[1..] {
        walk.add(root);
    }
    walk.standard_filters(!no_ignore)
        .hidden(false)
        .require_git(false)
        .sort_by_file_name(Ord::cmp)
        .filter_entry(|e| e.file_name() != ".git");
    let mut files = Vec::new();
    let mut bytes = 0u64;
    for entry in walk.build() {
        match entry {
            Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                files.push(e.into_path());
            }
            Ok(_) => {}
            Err(e) => {
                *errors += 1;
                eprintln!("warning: {e}");
            }
        }
    }
    (files, bytes)
}

/// The credentials in one file; `None` for a binary file.
fn scan_file(path: &Path) -> std::io::Result<Option<Vec<Finding>>> {
    let file = std::fs::File::open(path)?;
    scan_reader(&path.display().to_string(), file)
}

fn scan_reader(display: &str, input: impl Read) -> std::io::Result<Option<Vec<Finding>>> {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let head = reader.fill_buf()?;
    if head[..head.len().min(BINARY_SNIFF)].contains(&0) {
        return Ok(None);
    }
    let mut findings = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        for candidate in credentials_in(&line) {
            // Well-formed, so it parses; the parse only serves the hint.
            if let Ok(c) = Credential::parse(candidate) {
                findings.push(Finding {
                    path: display.to_owned(),
                    line: number,
                    kind: match c.kind() {
                        CredentialKind::ApiKey => "api_key",
                        CredentialKind::Token => "token",
                    },
                    hint: c.hint(),
                });
            }
        }
    }
    Ok(Some(findings))
}

/// Well-formed credentials in `text`: maximal runs of word characters
/// that have a credential's exact shape and a correct checksum.
pub fn credentials_in(text: &[u8]) -> impl Iterator<Item = &str> {
    // `<2–12>_<live|test>_<36>`
    const SHORTEST: usize = 2 + 1 + 4 + 1 + BODY_LEN;
    const LONGEST: usize = 12 + 1 + 4 + 1 + BODY_LEN;
    text.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .filter(|run| (SHORTEST..=LONGEST).contains(&run.len()))
        // Word characters are ASCII, so every run is UTF-8.
        .filter_map(|run| std::str::from_utf8(run).ok())
        .filter(|run| is_well_formed(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tooken_core::Mode;

    fn flip_last(s: &str) -> String {
        let mut s = s.to_owned();
        let last = s.pop().unwrap();
        s.push(if last == 'a' { 'b' } else { 'a' });
        s
    }

    #[test]
    fn finds_keys_and_tokens_between_non_word_characters() {
        let key = Credential::generate("tok", Mode::Live);
        let token = Credential::generate("acme", Mode::Test);
        let text = format!(
            "TOOKEN_API_KEY={}\n{{\"token\":\"{}\"}} ",
            key.expose(),
            token.expose()
        );
        let found: Vec<&str> = credentials_in(text.as_bytes()).collect();
        assert_eq!(found, [key.expose(), token.expose()]);
    }

    #[test]
    fn a_wrong_checksum_or_a_longer_word_is_not_a_finding() {
        let key = Credential::generate("tok", Mode::Live);
        let wrong = flip_last(key.expose());
        assert_eq!(credentials_in(wrong.as_bytes()).count(), 0);
        for glued in [
            format!("x{}", key.expose()),
            format!("{}x", key.expose()),
            format!("my_{}", key.expose()),
            key.expose().to_uppercase(),
        ] {
            assert_eq!(credentials_in(glued.as_bytes()).count(), 0, "{glued}");
        }
    }

    #[test]
    fn reports_hint_line_and_kind_but_never_the_secret() {
        let key = Credential::generate("tok", Mode::Test);
        let token = Credential::generate("tkn", Mode::Live);
        let text = format!("one\ntwo {}\nthree\n{}", key.expose(), token.expose());
        let found = scan_reader("f.env", text.as_bytes()).unwrap().unwrap();
        assert_eq!(
            found,
            [
                Finding {
                    path: "f.env".into(),
                    line: 2,
                    kind: "api_key",
                    hint: key.hint(),
                },
                Finding {
                    path: "f.env".into(),
                    line: 4,
                    kind: "token",
                    hint: token.hint(),
                },
            ]
        );
        let shown = serde_json::to_string(&found).unwrap();
        assert!(!shown.contains(key.expose()) && !shown.contains(token.expose()));
    }

    #[test]
    fn binary_files_are_skipped() {
        let key = Credential::generate("tok", Mode::Live);
        let mut bytes = b"\x00\x01binary ".to_vec();
        bytes.extend_from_slice(key.expose().as_bytes());
        assert_eq!(scan_reader("b.bin", &bytes[..]).unwrap(), None);
    }

    #[test]
    fn the_documented_pattern_agrees_with_the_scanner() {
        // docs/cli.md: \b[a-z0-9]{2,12}_(?:live|test)_[A-Za-z0-9]{36}\b
        let key = Credential::generate("tok", Mode::Live);
        let s = key.expose();
        let (prefix, rest) = s.split_once('_').unwrap();
        let (mode, body) = rest.split_once('_').unwrap();
        assert!((2..=12).contains(&prefix.len()));
        assert!(prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert!(mode == "live" || mode == "test");
        assert_eq!(body.len(), 36);
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
        // The checksum: CRC32 of all but the last 6, base62, zero-padded.
        let head = &s[..s.len() - 6];
        let mut crc = crc32_ieee(head.as_bytes());
        let mut digits = [b'0'; 6];
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(crc % 62) as usize];
            crc /= 62;
        }
        assert_eq!(&s[s.len() - 6..], std::str::from_utf8(&digits).unwrap());
    }

    /// CRC-32 (IEEE), written out so the test checks the documented
    /// algorithm rather than the implementation's own call.
    fn crc32_ieee(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
