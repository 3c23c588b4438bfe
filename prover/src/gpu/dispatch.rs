//! Small helpers shared by the engines: pipelines from composed kernels, buffers, bind groups
//! and bounded 2-D dispatches.

use std::collections::HashMap;

use keel_shaders::{compose, Kernel, Limbs};
use tracing::debug;
use wgpu::util::DeviceExt;

use super::{device::GpuContext, error::GpuError};

/// The most workgroups in one dispatch dimension (WebGPU's guaranteed limit).
const MAX_GROUPS_PER_DIM: u32 = 65_535;

/// Compiled pipelines of some kernels, by entry point.
pub(crate) struct Pipelines {
    by_entry: HashMap<&'static str, wgpu::ComputePipeline>,
}

impl Pipelines {
    /// The pipelines of every entry point of `kernels` with `limbs`, compiled on first use and
    /// then taken from the context's cache; 32-bit limbs on a device without `SHADER_INT64` are
    /// a typed error.
    pub(crate) fn build(
        ctx: &GpuContext,
        kernels: &[Kernel],
        limbs: Limbs,
    ) -> Result<Pipelines, GpuError> {
        if limbs.needs_int64() && !ctx.supports_int64() {
            return Err(GpuError::NoInt64 {
                adapter: ctx.info().name.clone(),
            });
        }
        let mut by_entry = HashMap::new();
        for &kernel in kernels {
            let mut cache = ctx.pipeline_cache();
            if let Some(compiled) = cache.get(&(kernel, limbs)) {
                by_entry.extend(compiled.iter().map(|(k, v)| (*k, v.clone())));
                continue;
            }
            let started = std::time::Instant::now();
            let compiled = ctx.scoped("compiling kernels", || {
                let label = kernel.label();
                let source = compose(kernel, limbs);
                let module = ctx
                    .device()
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(&label),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    });
                kernel
                    .entry_points()
                    .iter()
                    .map(|&entry| {
                        let pipeline = ctx.device().create_compute_pipeline(
                            &wgpu::ComputePipelineDescriptor {
                                label: Some(entry),
                                layout: None,
                                module: &module,
                                entry_point: Some(entry),
                                compilation_options: Default::default(),
                                cache: None,
                            },
                        );
                        (entry, pipeline)
                    })
                    .collect::<HashMap<_, _>>()
            })?;
            debug!(target: "keel::prover::gpu", ?kernel, %limbs, elapsed = ?started.elapsed(), "kernel compiled");
            by_entry.extend(compiled.iter().map(|(k, v)| (*k, v.clone())));
            cache.insert((kernel, limbs), compiled);
        }
        Ok(Pipelines { by_entry })
    }

    /// Records a dispatch of `entry` over `items` invocations, in workgroups of `workgroup`,
    /// with `buffers` as `(binding, buffer)` pairs: exactly the bindings the entry point uses
    /// (its layout is derived from the shader).
    pub(crate) fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        entry: &str,
        buffers: Bindings<'_>,
        items: u64,
        workgroup: u32,
    ) {
        if items == 0 {
            return;
        }
        let pipeline = &self.by_entry[entry];
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .map(|&(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &layout,
            entries: &entries,
        });
        // Large counts spread over a second dimension: the kernels index by
        // `gid.x + gid.y * num_workgroups.x * WG`.
        let groups = items.div_ceil(u64::from(workgroup));
        let x = groups.min(u64::from(MAX_GROUPS_PER_DIM)) as u32;
        let y = groups.div_ceil(u64::from(x)) as u32;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(entry),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }
}

/// What a buffer of `bytes` takes at most in device memory: its size rounded up to 256 bytes
/// (drivers align buffer allocations to at most that), for the engines' memory plans.
pub(crate) fn allocation(bytes: u64) -> u64 {
    bytes.max(4).next_multiple_of(256)
}

/// What a buffer of `bytes` made with its contents takes at most until its upload is done:
/// twice [`allocation`], as wgpu stages the contents in a buffer of the same size until the
/// copy is submitted (and so for `Queue::write_buffer`).
pub(crate) fn allocation_uploaded(bytes: u64) -> u64 {
    2 * allocation(bytes)
}

/// A storage buffer of `bytes` (at least 4), zeroed.
pub(crate) fn storage(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A storage buffer holding `words`.
pub(crate) fn storage_init(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    let contents: &[u8] = if words.is_empty() {
        &[0; 4]
    } else {
        bytemuck::cast_slice(words)
    };
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
}

/// A uniform buffer holding `words`.
pub(crate) fn uniform(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    // Uniform structs are padded to 16 bytes.
    let mut padded = words.to_vec();
    padded.resize(words.len().next_multiple_of(4).max(4), 0);
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// A kernel's buffers as `(binding, buffer)` pairs.
pub(crate) type Bindings<'a> = &'a [(u32, &'a wgpu::Buffer)];

/// A command encoder labelled `label`.
pub(crate) fn encoder(ctx: &GpuContext, label: &str) -> wgpu::CommandEncoder {
    ctx.device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
}

/// Copies `src` back to the CPU as words.
pub(crate) fn read_words(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    stage: &'static str,
) -> Result<Vec<u32>, GpuError> {
    read_range(ctx, src, 0, src.size(), stage)
}

/// Copies `size` bytes of `src` from byte `offset` (both multiples of 4) back to the CPU as
/// words.
pub(crate) fn read_range(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    offset: u64,
    size: u64,
    stage: &'static str,
) -> Result<Vec<u32>, GpuError> {
    let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("keel readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = encoder(ctx, stage);
    enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
    ctx.submit(enc.finish());
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait(stage)?;
    match rx.recv() {
        Ok(Ok(())) => {}
        _ => return Err(GpuError::Readback { stage }),
    }
    let words = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|_| GpuError::Readback { stage })?;
        bytemuck::cast_slice::<u8, u32>(&view).to_vec()
    };
    staging.unmap();
    Ok(words)
}
