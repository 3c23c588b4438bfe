//! The committed generated Solidity is what the generator emits from keel-state today.

use keel_evm::generate;

#[test]
fn generated_solidity_is_up_to_date() {
    let dir = keel_evm::repo_root().join(generate::GENERATED_DIR);
    let bless = std::env::var_os("KEEL_BLESS").is_some();
    for (name, text) in generate::all() {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == text,
            "{} is stale: regenerate with `KEEL_BLESS=1 cargo test -p keel-evm --test it generated`, \
             then `node contracts/build.mjs`",
            path.display()
        );
    }
}
