//! Every composed module, with both limb widths, parses and validates with naga: a broken
//! shader fails here, on any machine, before a GPU sees it.

use keel_shaders::{compose, Kernel, Limbs};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn validate(kernel: Kernel, limbs: Limbs) -> naga::Module {
    let src = compose(kernel, limbs);
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| {
        panic!(
            "{kernel:?} with {limbs:?} does not parse:\n{}",
            e.emit_to_string(&src)
        )
    });
    let caps = if limbs.needs_int64() {
        Capabilities::SHADER_INT64
    } else {
        Capabilities::empty()
    };
    Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{kernel:?} with {limbs:?} does not validate:\n{}",
                e.emit_to_string(&src)
            )
        });
    module
}

#[test]
fn every_kernel_validates_with_both_limb_widths() {
    for kernel in Kernel::ALL {
        for limbs in Limbs::ALL {
            let module = validate(kernel, limbs);
            for entry in kernel.entry_points() {
                assert!(
                    module.entry_points.iter().any(|e| e.name == *entry),
                    "{kernel:?}: no entry point {entry}"
                );
            }
        }
    }
}

#[test]
fn sixteen_bit_limbs_need_no_int64() {
    // The portable width must validate without SHADER_INT64: that is its reason to exist.
    for kernel in Kernel::ALL {
        let src = compose(kernel, Limbs::U16);
        assert!(
            !src.contains("u64"),
            "{kernel:?} uses u64 with 16-bit limbs"
        );
    }
}
