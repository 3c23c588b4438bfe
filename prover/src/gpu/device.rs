//! Device acquisition by policy, apart from kernel execution.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tracing::{info, warn};

use super::error::GpuError;

const TARGET: &str = "keel::prover::gpu";

/// Whether and how to use a GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuPolicy {
    /// Never use a GPU.
    Off,
    /// Use the best adapter there is (discrete, integrated, virtual, then software); with none,
    /// run on the CPU and say so.
    #[default]
    Auto,
    /// Use the best hardware adapter there is, and fail if there is none: a software adapter
    /// (lavapipe) is refused, so a proof is never slower than the CPU by surprise.
    Require,
    /// Use the best adapter there is, a software one included, and fail if there is none:
    /// correctness runs of the GPU code on a machine without a GPU (lavapipe).
    Software,
}

impl FromStr for GpuPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(GpuPolicy::Off),
            "auto" => Ok(GpuPolicy::Auto),
            "require" => Ok(GpuPolicy::Require),
            "software" => Ok(GpuPolicy::Software),
            other => Err(format!(
                "unknown GPU policy `{other}`: expected auto, require, software or off"
            )),
        }
    }
}

impl fmt::Display for GpuPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GpuPolicy::Off => "off",
            GpuPolicy::Auto => "auto",
            GpuPolicy::Require => "require",
            GpuPolicy::Software => "software",
        })
    }
}

/// An adapter's kind, best first: the order in which [`GpuContext::acquire`] prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdapterClass {
    /// A discrete GPU.
    Discrete,
    /// A GPU sharing the CPU's memory.
    Integrated,
    /// A virtualised GPU.
    Virtual,
    /// A driver running on the CPU (Mesa lavapipe, SwiftShader, WARP).
    Software,
    /// Anything the driver did not classify.
    Other,
}

impl From<wgpu::DeviceType> for AdapterClass {
    fn from(t: wgpu::DeviceType) -> Self {
        match t {
            wgpu::DeviceType::DiscreteGpu => AdapterClass::Discrete,
            wgpu::DeviceType::IntegratedGpu => AdapterClass::Integrated,
            wgpu::DeviceType::VirtualGpu => AdapterClass::Virtual,
            wgpu::DeviceType::Cpu => AdapterClass::Software,
            wgpu::DeviceType::Other => AdapterClass::Other,
        }
    }
}

/// One opened device with its queue: what every engine runs on.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    int64: bool,
    /// Compiled kernels by (kernel, limbs), entry point: compiled once per process, however
    /// many engines use them.
    pipelines: Mutex<PipelineCache>,
    /// The time with work in flight on the queue.
    busy: Arc<Mutex<BusyClock>>,
    /// The most buffer memory seen in use at a submission.
    peak: std::sync::atomic::AtomicU64,
}

/// How long a queue has had work in flight: from a submission while it was idle until the last
/// submitted work is done, summed.
#[derive(Debug, Default)]
struct BusyClock {
    in_flight: u32,
    since: Option<Instant>,
    total: Duration,
}

fn lock_clock(clock: &Mutex<BusyClock>) -> std::sync::MutexGuard<'_, BusyClock> {
    // the clock's fields are updated together under the lock: a panic cannot split them
    clock.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) type PipelineCache = HashMap<
    (keel_shaders::Kernel, keel_shaders::Limbs),
    HashMap<&'static str, wgpu::ComputePipeline>,
>;

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .field("int64", &self.int64)
            .finish()
    }
}

impl GpuContext {
    /// Opens the best adapter under `policy`: `Ok(None)` when the policy is `off`, or `auto`
    /// finds no adapter (the caller runs on the CPU).
    pub fn acquire(policy: GpuPolicy) -> Result<Option<Arc<GpuContext>>, GpuError> {
        if policy == GpuPolicy::Off {
            info!(target: TARGET, "GPU off by policy; the CPU runs everything");
            return Ok(None);
        }
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| AdapterClass::from(a.get_info().device_type));
        let Some(adapter) = adapters.into_iter().next() else {
            return match policy {
                GpuPolicy::Require | GpuPolicy::Software => Err(GpuError::NoAdapter),
                _ => {
                    warn!(target: TARGET, "no GPU adapter found; the CPU runs everything");
                    Ok(None)
                }
            };
        };
        let info = adapter.get_info();
        if policy == GpuPolicy::Require
            && AdapterClass::from(info.device_type) == AdapterClass::Software
        {
            return Err(GpuError::SoftwareOnly {
                adapter: format!("{} ({:?})", info.name, info.backend),
            });
        }
        let ctx = GpuContext::open(&adapter)?;
        info!(target: TARGET, adapter = %ctx.describe(), int64 = ctx.int64, "GPU device opened");
        Ok(Some(Arc::new(ctx)))
    }

    /// Opens `adapter` with its own limits (not wgpu's conservative defaults) and, where it has
    /// it, `SHADER_INT64`.
    pub fn open(adapter: &wgpu::Adapter) -> Result<GpuContext, GpuError> {
        let info = adapter.get_info();
        let int64 = adapter.features().contains(wgpu::Features::SHADER_INT64);
        let features = if int64 {
            wgpu::Features::SHADER_INT64
        } else {
            wgpu::Features::empty()
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("keel"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::RequestDevice {
            adapter: format!("{} ({:?})", info.name, info.backend),
            source,
        })?;
        // Errors are caught by error scopes around each step; anything that escapes them is
        // logged rather than panicking the process, and the step's scope reports it.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            warn!(target: TARGET, error = %e, "uncaptured GPU error");
        }));
        device.set_device_lost_callback(|reason, message| {
            warn!(target: TARGET, ?reason, %message, "GPU device lost");
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            int64,
            pipelines: Mutex::new(HashMap::new()),
            busy: Arc::default(),
            peak: Default::default(),
        })
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The device's queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter's description from its driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The adapter's class.
    pub fn class(&self) -> AdapterClass {
        self.info.device_type.into()
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Whether the device has `SHADER_INT64`, so 32-bit limbs can run.
    pub fn supports_int64(&self) -> bool {
        self.int64
    }

    /// The limb width this device runs best: 32-bit limbs where it has 64-bit integers.
    pub fn preferred_limbs(&self) -> keel_shaders::Limbs {
        if self.int64 {
            keel_shaders::Limbs::U32
        } else {
            keel_shaders::Limbs::U16
        }
    }

    /// "name (class, backend, driver)", for logs and reports.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {} {})",
            self.info.name,
            self.class(),
            self.info.backend,
            self.info.driver,
            self.info.driver_info
        )
    }

    /// The largest storage binding, in bytes.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// The compiled-kernel cache.
    pub(crate) fn pipeline_cache(&self) -> std::sync::MutexGuard<'_, PipelineCache> {
        // A panic while holding the lock cannot leave a half-inserted entry: recover the map.
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error caught there is
    /// returned with `stage` as context.
    pub(crate) fn scoped<T>(
        &self,
        stage: &'static str,
        f: impl FnOnce() -> T,
    ) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        match v.or(o) {
            Some(e) => Err(GpuError::Device {
                stage,
                message: e.to_string(),
            }),
            None => Ok(out),
        }
    }

    /// Bytes of device memory in buffers now, as the driver's allocations count them (every
    /// buffer of this device: resident data and the work in flight).
    pub fn memory_in_use(&self) -> u64 {
        self.device
            .get_internal_counters()
            .hal
            .buffer_memory
            .read()
            .max(0) as u64
    }

    /// The most device memory seen in buffers at a submission since the device was opened
    /// (every buffer a kernel reads is alive when its work is submitted).
    pub fn memory_peak(&self) -> u64 {
        self.peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(self.memory_in_use())
    }

    /// Submits `commands`, counting the time until they are done as busy and the memory in use
    /// toward the peak.
    pub(crate) fn submit(&self, commands: wgpu::CommandBuffer) {
        self.peak
            .fetch_max(self.memory_in_use(), std::sync::atomic::Ordering::Relaxed);
        {
            let mut clock = lock_clock(&self.busy);
            if clock.in_flight == 0 {
                clock.since = Some(Instant::now());
            }
            clock.in_flight += 1;
        }
        self.queue.submit([commands]);
        let busy = self.busy.clone();
        self.queue.on_submitted_work_done(move || {
            let mut clock = lock_clock(&busy);
            clock.in_flight = clock.in_flight.saturating_sub(1);
            if clock.in_flight == 0 {
                if let Some(since) = clock.since.take() {
                    clock.total += since.elapsed();
                }
            }
        });
    }

    /// The time this device has had work in flight since it was opened: from each submission
    /// made while it was idle until the work submitted is done (as the waits that follow every
    /// submission observe it). Uploads and read-backs count, as the device does them.
    pub fn busy(&self) -> Duration {
        let clock = lock_clock(&self.busy);
        clock.total + clock.since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Waits for all submitted work.
    pub(crate) fn wait(&self, stage: &'static str) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|source| GpuError::Poll { stage, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_and_refuses_unknown_names() {
        for p in [
            GpuPolicy::Off,
            GpuPolicy::Auto,
            GpuPolicy::Require,
            GpuPolicy::Software,
        ] {
            assert_eq!(p.to_string().parse::<GpuPolicy>(), Ok(p));
        }
        assert!("gpu"
            .parse::<GpuPolicy>()
            .unwrap_err()
            .contains("auto, require, software or off"));
        assert_eq!(GpuPolicy::default(), GpuPolicy::Auto);
    }

    #[test]
    fn classes_order_discrete_first_software_late() {
        assert!(AdapterClass::Discrete < AdapterClass::Integrated);
        assert!(AdapterClass::Integrated < AdapterClass::Virtual);
        assert!(AdapterClass::Virtual < AdapterClass::Software);
    }

    #[test]
    fn off_opens_nothing() {
        assert!(GpuContext::acquire(GpuPolicy::Off).unwrap().is_none());
    }
}
