//! The wgpu runtime: device acquisition by policy, the MSM and NTT engines, and diagnostic
//! kernels.
//!
//! Device acquisition ([`GpuContext::acquire`]) is kept apart from kernel execution: every engine
//! takes a context, so tests and services pass the one device of their process.

mod convert;
mod device;
pub mod diag;
mod dispatch;
mod error;
mod msm;
pub mod ntt;
mod poly;
mod quotient;

pub use device::{AdapterClass, GpuContext, GpuPolicy};
pub use error::{GpuError, MsmError};
pub use keel_shaders::Limbs;
pub use msm::{default_window_bits, CpuMsm, GpuMsm, Msm, MsmConfig, MsmPlan, DEFAULT_MAX_CHUNK};
pub use ntt::{CpuNtt, GpuNtt, Ntt};
pub use poly::{DevicePoly, GpuPolys};
pub use quotient::{GpuQuotient, KeyColumns, ResidentColumns, Staged, Vanishing};
