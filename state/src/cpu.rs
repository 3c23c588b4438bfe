//! Whether this CPU can run the field arithmetic this build was compiled with.
//!
//! On x86-64, Keel builds halo2curves' BN254 assembly, which uses the ADX and BMI2 instructions
//! (Intel since Broadwell, 2015; AMD since Zen, 2017). On an older x86-64 CPU it would die with an
//! illegal instruction at the first field multiplication; binaries call [`check`] first and refuse
//! with a clear message instead. Other architectures use portable arithmetic and always pass.

/// `Err` with an explanation when the CPU lacks an instruction this build needs.
pub fn check() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("adx", std::arch::is_x86_feature_detected!("adx")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
        ]
        .into_iter()
        .filter_map(|(name, present)| (!present).then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "this CPU lacks {} (needed by the BN254 field assembly of x86-64 builds; \
                 Intel Broadwell / AMD Zen or newer)",
                missing.join(" and ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_passes() {
        // the test suite itself multiplies field elements: if it runs, the CPU is fine
        assert_eq!(super::check(), Ok(()));
    }
}
