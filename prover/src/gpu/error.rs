//! Errors of the GPU runtime. GPU failures are returned, never panicked on.

/// What went wrong on the GPU path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The policy was `require` and no adapter exists.
    #[error(
        "no GPU adapter found and the GPU policy is `require`. Help: install a Vulkan driver \
         (Debian: `mesa-vulkan-drivers` provides the software one, lavapipe) or use `auto` to \
         fall back to the CPU"
    )]
    NoAdapter,
    /// The policy was `require` and the only adapter runs on the CPU.
    #[error(
        "the only GPU adapter, {adapter}, is a software one (it runs on the CPU, slower than the \
         CPU path) and the GPU policy is `require`. Help: use `software` to run the GPU code on \
         it anyway (a correctness run), or `auto` to prove on the CPU"
    )]
    SoftwareOnly {
        /// The adapter's name and backend.
        adapter: String,
    },
    /// The adapter would not open a device.
    #[error("could not open a device on adapter {adapter}: {source}")]
    RequestDevice {
        /// The adapter's name and backend.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// wgpu reported an error (validation, out of memory, internal) during `stage`.
    #[error("GPU error during {stage}: {message}")]
    Device {
        /// What the runtime was doing.
        stage: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// Waiting for the device failed (device lost or timeout).
    #[error("GPU wait failed during {stage}: {source}")]
    Poll {
        /// What the runtime was doing.
        stage: &'static str,
        /// wgpu's reason.
        #[source]
        source: wgpu::PollError,
    },
    /// Reading results back failed.
    #[error("reading GPU results back failed during {stage}")]
    Readback {
        /// What the runtime was doing.
        stage: &'static str,
    },
    /// 32-bit limbs were asked for on a device without `SHADER_INT64`.
    #[error(
        "32-bit limbs need SHADER_INT64, which adapter {adapter} does not offer. Help: leave the \
         limb width unset to pick 16-bit limbs automatically"
    )]
    NoInt64 {
        /// The adapter's name.
        adapter: String,
    },
    /// The input does not fit what the device can bind, even split into chunks.
    #[error("{what} needs {needed} bytes in one binding; the device allows {allowed}")]
    TooLarge {
        /// The buffer.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// The device's `max_storage_buffer_binding_size`.
        allowed: u64,
    },
    /// The GPU returned a value that is not a field element or curve point: a kernel bug.
    #[error("the GPU returned an invalid {what} (at {at}); this is a kernel bug")]
    BadResult {
        /// What was invalid.
        what: &'static str,
        /// Which one: the window of an MSM's window sum, the record of a diagnostic kernel.
        at: usize,
    },
}

/// What went wrong in an MSM, whichever engine ran it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MsmError {
    /// More scalars than resident bases.
    #[error("MSM of {scalars} scalars over {bases} bases: more scalars than bases")]
    TooManyScalars {
        /// Scalars given.
        scalars: usize,
        /// Bases held by the engine.
        bases: usize,
    },
    /// The GPU failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}
