//! Settings from a TOML file. `[section] key = value` is the flag `--section.key value` of
//! every command that has that flag (a key outside any section is `--key`), so one file serves
//! `keel devnet`, `keel l1`, `keel sequencer` and the rest; a flag given on the command line
//! wins over the file, and the file over the built-in default (the `DEFAULT_*` constants).
//!
//! The file is `--config FILE`, else `$KEEL_CONFIG`, else `./keel.toml` when it exists. A key
//! that no command knows is refused, naming the file; a key another command knows is left to
//! it. `keel config show [COMMAND]` prints the settings COMMAND would run with and where each
//! came from.
//!
//! ```toml
//! [sequencer]
//! batch-capacity = 1
//! peers = ["http://10.0.0.2:7545"]
//! [prover]
//! gpu = "off"
//! ```

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use clap::{Arg, ArgAction, Args, Command};

/// The file read when neither `--config` nor `$KEEL_CONFIG` names one (if it exists).
pub(crate) const DEFAULT_FILE: &str = "keel.toml";
/// The environment variable naming the file.
pub(crate) const ENV: &str = "KEEL_CONFIG";

/// `keel config`'s commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Print the settings a command runs with (defaults, the file, the flags given here), as
    /// TOML with where each came from; `--json` prints them as JSON.
    Show(ShowArgs),
}

/// Which command's settings.
#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// The command, e.g. `devnet`, `sequencer`, `l1`, `prover keygen`, then any of its flags.
    #[arg(default_values_t = ["devnet".to_string()], num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// Print JSON instead of TOML.
    #[arg(long)]
    json: bool,
}

/// The settings file in force, if any: `--config`, `$KEEL_CONFIG`, or `./keel.toml`.
fn locate(argv: &[OsString]) -> anyhow::Result<Option<PathBuf>> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            let file = it.next().context("--config needs a file")?;
            return Ok(Some(PathBuf::from(file)));
        }
        if let Some(file) = a.strip_prefix("--config=") {
            return Ok(Some(PathBuf::from(file)));
        }
    }
    if let Some(file) = std::env::var_os(ENV).filter(|f| !f.is_empty()) {
        return Ok(Some(PathBuf::from(file)));
    }
    let default = PathBuf::from(DEFAULT_FILE);
    Ok(default.is_file().then_some(default))
}

/// One setting: the flag's long name (`section.key`) and its value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Setting {
    pub(crate) name: String,
    pub(crate) value: toml::Value,
}

/// Reads `file` into its settings, in file order.
pub(crate) fn read(file: &Path) -> anyhow::Result<Vec<Setting>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse(&text).with_context(|| format!("{} is not a Keel settings file", file.display()))
}

fn parse(text: &str) -> anyhow::Result<Vec<Setting>> {
    let table: toml::Table = text.parse()?;
    let mut out = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (k, v) in section {
                    if v.is_table() {
                        bail!("[{key}] {k}: sections do not nest");
                    }
                    out.push(Setting {
                        name: format!("{key}.{}", k.replace('_', "-")),
                        value: v,
                    });
                }
            }
            v => out.push(Setting {
                name: key.replace('_', "-"),
                value: v,
            }),
        }
    }
    Ok(out)
}

/// The flag text of a value: arrays comma-separated.
fn flag_value(name: &str, v: &toml::Value) -> anyhow::Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    bail!("{name}: a list holds plain values")
                }
                i => flag_value(name, i),
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .join(","),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Table(_) => bail!("{name}: sections do not nest"),
    })
}

/// Every command in the tree, the root included.
fn all_commands(cmd: &Command) -> Vec<&Command> {
    let mut out = vec![cmd];
    for sub in cmd.get_subcommands() {
        out.extend(all_commands(sub));
    }
    out
}

fn find_arg<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| a.get_long() == Some(name))
}

/// Whether the command line gives `arg` itself (by its name or an alias).
fn given(args: &[OsString], arg: &Arg) -> bool {
    given_value(args, arg).is_some()
}

/// What the command line gives `arg` (by its name or an alias): `None` if it does not give
/// it, `Some(None)` if it names it without a value (a value that is missing, or a switch
/// that is not a `SetTrue` one).
fn given_value(args: &[OsString], arg: &Arg) -> Option<Option<String>> {
    let mut names: Vec<&str> = arg.get_long().into_iter().collect();
    names.extend(arg.get_all_aliases().unwrap_or_default());
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_string_lossy();
        let after = a.strip_prefix("--")?;
        let rest = names.iter().find_map(|n| {
            after
                .strip_prefix(n)
                .filter(|r| r.is_empty() || r.starts_with('='))
        })?;
        if let Some(v) = rest.strip_prefix('=') {
            return Some(Some(v.to_owned()));
        }
        Some(if arg.get_action().takes_values() {
            args.get(i + 1).map(|v| v.to_string_lossy().into_owned())
        } else {
            matches!(arg.get_action(), ArgAction::SetTrue).then(|| "true".into())
        })
    })
}

/// Where the subcommand path of `argv` ends: the index after the deepest subcommand's name,
/// and that subcommand.
fn leaf<'a>(root: &'a Command, argv: &[OsString]) -> (usize, &'a Command) {
    let (mut at, mut cmd) = (1, root);
    let mut i = 1;
    while i < argv.len() && cmd.has_subcommands() {
        let a = argv[i].to_string_lossy();
        if a == "--config" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        match cmd.find_subcommand(a.as_ref()) {
            Some(sub) => {
                cmd = sub;
                i += 1;
                at = i;
            }
            None => break,
        }
    }
    (at, cmd)
}

/// The command line with the settings file's values inserted as flags after the subcommand's
/// name (those the command line gives itself are left out), and the file, if there was one.
pub(crate) fn expand(
    root: &Command,
    argv: Vec<OsString>,
) -> anyhow::Result<(Vec<OsString>, Option<PathBuf>)> {
    let Some(file) = locate(&argv)? else {
        return Ok((argv, None));
    };
    let settings = read(&file)?;
    let (at, cmd) = leaf(root, &argv);
    let flags = flags_for(root, cmd, &settings, &argv[at..])
        .with_context(|| format!("in {}", file.display()))?;
    let mut out = argv[..at].to_vec();
    out.extend(flags.into_iter().map(OsString::from));
    out.extend_from_slice(&argv[at..]);
    Ok((out, Some(file)))
}

/// The flags `settings` give `cmd`, skipping those `given` on its command line.
fn flags_for(
    root: &Command,
    cmd: &Command,
    settings: &[Setting],
    given_args: &[OsString],
) -> anyhow::Result<Vec<String>> {
    let mut flags = Vec::new();
    for s in settings {
        let Some(arg) = find_arg(cmd, &s.name) else {
            if all_commands(root)
                .iter()
                .any(|c| find_arg(c, &s.name).is_some())
            {
                continue; // another command's setting
            }
            bail!("no command has a setting `{}`", s.name);
        };
        if given(given_args, arg) {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue => match s.value {
                toml::Value::Boolean(true) => flags.push(format!("--{}", s.name)),
                toml::Value::Boolean(false) => {}
                _ => bail!("`{}` is true or false", s.name),
            },
            _ => {
                let v = flag_value(&s.name, &s.value)?;
                if !(v.is_empty() && s.value.is_array()) {
                    flags.push(format!("--{}={v}", s.name));
                }
            }
        }
    }
    Ok(flags)
}

mod show;
#[cfg(test)]
mod tests;

pub(crate) use show::run;
