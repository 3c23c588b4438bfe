//! The settings file and `keel config show`.

use super::{show::*, *};

fn root() -> Command {
    crate::command()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn a_file_gives_flags_after_the_subcommand_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.toml");
    std::fs::write(
        &file,
        "[sequencer]\nbatch_capacity = 4\npeers = [\"http://a\", \"http://b\"]\n\
         listen = \"127.0.0.1:9\"\n[l1]\nlisten = \"127.0.0.1:1\"\n[devnet]\nexit = true\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (argv, used) = expand(
        &root(),
        os(&[
            "keel",
            "--config",
            f,
            "sequencer",
            "--sequencer.listen",
            "127.0.0.1:5",
        ]),
    )
    .unwrap();
    assert_eq!(used.as_deref(), Some(file.as_path()));
    assert_eq!(
        argv,
        os(&[
            "keel",
            "--config",
            f,
            "sequencer",
            "--sequencer.batch-capacity=4",
            "--sequencer.peers=http://a,http://b",
            "--sequencer.listen",
            "127.0.0.1:5",
        ])
    );
    // a boolean switch, on a nested command's path too
    let (argv, _) = expand(&root(), os(&["keel", "devnet", "--config", f])).unwrap();
    assert!(argv.contains(&OsString::from("--devnet.exit")), "{argv:?}");
    let (argv, _) = expand(&root(), os(&["keel", "devnet", "--exit", "--config", f])).unwrap();
    assert_eq!(
        argv.iter()
            .filter(|a| a.to_string_lossy().contains("exit"))
            .count(),
        1,
        "the alias counts as given: {argv:?}"
    );
}

#[test]
fn an_unknown_or_mistyped_setting_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.toml");
    let f = file.to_str().unwrap();
    for (text, want) in [
        (
            "[sequencer]\nbatch-capasity = 4\n",
            "sequencer.batch-capasity",
        ),
        ("[devnet]\nexit = \"yes\"\n", "true or false"),
        ("[sequencer]\n[sequencer.x]\ny = 1\n", "do not nest"),
        ("[sequencer\n", "not a Keel settings file"),
    ] {
        std::fs::write(&file, text).unwrap();
        let e = expand(&root(), os(&["keel", "--config", f, "devnet"])).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains(want) && e.contains(f), "{text}: {e}");
    }
    let e = expand(&root(), os(&["keel", "--config", "/no/such.toml", "l1"])).unwrap_err();
    assert!(format!("{e:#}").contains("/no/such.toml"), "{e:#}");
}

#[test]
fn show_lists_defaults_file_values_and_flags_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.toml");
    std::fs::write(&file, "[sequencer]\nbatch-capacity = 4\n").unwrap();
    let words: Vec<String> = [
        "sequencer",
        "--config",
        file.to_str().unwrap(),
        "--sequencer.listen",
        "127.0.0.1:5",
    ]
    .map(String::from)
    .to_vec();
    let (rows, heading) = show_rows(&root(), &words).unwrap();
    assert!(heading.contains("keel sequencer") && heading.contains("k.toml"));
    let row = |k: &str| rows.iter().find(|r| r.name() == k).unwrap();
    assert_eq!(
        row("sequencer.batch-capacity").value,
        Some(toml::Value::Integer(4))
    );
    assert_eq!(row("sequencer.batch-capacity").from, "file");
    assert_eq!(row("sequencer.listen").from, "command line");
    assert_eq!(row("sequencer.batch-deadline-ms").from, "default");
    assert_eq!(
        row("sequencer.batch-deadline-ms").value,
        Some(toml::Value::Integer(
            keel_sequencer::config::DEFAULT_BATCH_DEADLINE.as_millis() as i64
        ))
    );
    assert_eq!(row("l1.rpc").from, "not set");
    let e = show_rows(&root(), &["prover".into()]).unwrap_err();
    assert!(e.to_string().contains("prover keygen"), "{e}");
}
