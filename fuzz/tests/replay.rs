//! Replays every corpus and regression input through its target's body,
//! as a plain test: what CI runs in seconds, without libFuzzer, nightly
//! features or sanitizers (`.ci/fuzz-replay.sh`).

use std::{fs, path::Path};

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    // `FUZZ_REPLAY_TARGET=<name>` replays one target only.
    let only = std::env::var("FUZZ_REPLAY_TARGET").ok();
    for (name, run) in switchboard_fuzz::TARGETS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut count = 0;
        for dir in ["corpus", "regressions"] {
            let dir = root.join(dir).join(name);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut paths: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            paths.sort();
            for path in paths {
                // A file a running fuzzer just reduced away is skipped.
                let Ok(data) = fs::read(&path) else { continue };
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                count += 1;
            }
        }
        assert!(count > 0, "{name}: no corpus");
        println!("{name}: {count} inputs replayed");
        total += count;
    }
    println!("{total} inputs replayed");
}
