//! `keel config show`: the settings a command runs with, and where each came from.

use std::ffi::OsString;

use anyhow::Context;
use clap::Command;

use super::*;

/// A default's TOML value: a number or a boolean if it reads as one.
pub(super) fn typed(text: &str) -> toml::Value {
    if let Ok(i) = text.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(text.to_owned())
    }
}

/// One row of `keel config show`.
#[derive(Debug, PartialEq)]
pub(super) struct Shown {
    pub(super) section: String,
    pub(super) key: String,
    pub(super) value: Option<toml::Value>,
    pub(super) from: &'static str,
}

#[cfg(test)]
impl Shown {
    /// The flag's long name.
    pub(super) fn name(&self) -> String {
        if self.section.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{}", self.section, self.key)
        }
    }
}

pub(super) fn show_rows(root: &Command, words: &[String]) -> anyhow::Result<(Vec<Shown>, String)> {
    let argv: Vec<OsString> = std::iter::once("keel".into())
        .chain(words.iter().map(OsString::from))
        .collect();
    let (at, cmd) = leaf(root, &argv);
    anyhow::ensure!(
        at > 1 && !cmd.has_subcommands(),
        "name a command: one of {}",
        runnable(root).join(", ")
    );
    let path = argv[1..at]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let file = locate(&argv)?;
    let settings = match &file {
        Some(f) => read(f)?,
        None => Vec::new(),
    };
    let flags = &argv[at..];
    let mut rows = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version" | "config" | "log" | "json")
            || matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
        {
            continue;
        }
        let (section, key) = match long.split_once('.') {
            Some((s, k)) => (s.to_owned(), k.to_owned()),
            None => (String::new(), long.to_owned()),
        };
        let from_flag = given_value(flags, arg);
        let from_file = settings.iter().find(|s| s.name == long);
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let (value, from) = if let Some(v) = from_flag {
            (v.map(|v| typed(&v)), "command line")
        } else if let Some(s) = from_file {
            (Some(s.value.clone()), "file")
        } else if matches!(arg.get_action(), ArgAction::SetTrue) {
            (Some(toml::Value::Boolean(false)), "default")
        } else if defaults.is_empty() {
            (None, "not set")
        } else if arg.get_action().takes_values()
            && arg.get_value_delimiter().is_some()
            && defaults.len() != 1
        {
            (
                Some(toml::Value::Array(
                    defaults.iter().map(|d| typed(d)).collect(),
                )),
                "default",
            )
        } else {
            (Some(typed(&defaults.join(","))), "default")
        };
        rows.push(Shown {
            section,
            key,
            value,
            from,
        });
    }
    let heading = format!(
        "settings of `keel {path}`{}",
        match &file {
            Some(f) => format!(" (file: {})", f.display()),
            None => " (no settings file)".into(),
        }
    );
    Ok((rows, heading))
}

/// The commands that run something (leaves of the tree), as one types them.
pub(super) fn runnable(root: &Command) -> Vec<String> {
    fn walk(cmd: &Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let name = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                walk(sub, &format!("{name} "), out);
            } else if sub.get_name() != "help" {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out
}

pub(crate) fn run(root: &Command, cmd: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Show(args) = cmd;
    let (rows, heading) = show_rows(root, &args.command)?;
    if args.json {
        let mut out = serde_json::Map::new();
        for r in &rows {
            let v = match &r.value {
                Some(v) => serde_json::to_value(v)?,
                None => serde_json::Value::Null,
            };
            let slot = if r.section.is_empty() {
                &mut out
            } else {
                out.entry(r.section.clone())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()))
                    .as_object_mut()
                    .context("a section and a setting share a name")?
            };
            slot.insert(r.key.clone(), v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("# {heading}");
    let mut sections: Vec<&str> = Vec::new();
    for r in &rows {
        if !sections.contains(&r.section.as_str()) {
            sections.push(&r.section);
        }
    }
    // keys outside a section must come before the first [section]
    sections.sort_by_key(|s| !s.is_empty());
    for section in sections {
        if !section.is_empty() {
            println!("\n[{section}]");
        }
        for r in rows.iter().filter(|r| r.section == section) {
            match &r.value {
                Some(v) => println!("{} = {v}  # {}", r.key, r.from),
                None => println!("# {} =  (not set)", r.key),
            }
        }
    }
    Ok(())
}
