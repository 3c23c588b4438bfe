//! The proof's polynomials from the quotient to the last commitment: h's pieces, the
//! evaluations at `x` and the multi-opening work on a [`PolyTable`] of handles, so the same code
//! runs where the backend keeps them ([`Backend::device_polys`]: only scalars and commitments
//! come back) and on the host.
//!
//! Each polynomial the table makes remembers how it was made (a combination, a division), so a
//! device that fails part-way, where the backend may fall back, leaves the CPU what it needs to
//! make it again from the host's vectors; a polynomial only the device held comes back from
//! there, or the proof stops with a typed error.

use std::{
    collections::{HashMap, HashSet},
    ops::Deref,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use halo2_proofs::halo2curves::{
    bn256::{Fr, G1},
    ff::{Field, PrimeField},
};
use rayon::prelude::*;

use super::{
    backend::{Basis, DevicePolys, Resident},
    Backend, BackendError, PlonkError,
};

/// A polynomial of a [`PolyTable`].
pub(super) type PolyId = usize;

/// How a polynomial came to be.
#[derive(Clone)]
enum Source<'a> {
    /// The prover's own vector, on the host; the device gets it on first use.
    Host(&'a [Fr]),
    /// Kept on the device (a column of the proof's or the key's coefficients, a part's result),
    /// with the host's copy where it has one.
    Kept(Resident, Option<&'a [Fr]>),
    /// `Σ c_j · p_j − head`.
    Combine(Vec<(PolyId, Fr)>, Vec<Fr>),
    /// The quotient of `p − p(b)` by `X − b`.
    Divide(PolyId, Fr),
}

struct Entry<'a> {
    source: Source<'a>,
    /// Where the device holds it.
    device: Option<Resident>,
    /// Its coefficients made on the host.
    host: Option<Arc<Vec<Fr>>>,
}

/// A polynomial's coefficients on the host: the prover's own, or made here.
pub(super) enum Values<'a> {
    Borrowed(&'a [Fr]),
    Owned(Arc<Vec<Fr>>),
}

impl Deref for Values<'_> {
    type Target = [Fr];

    fn deref(&self) -> &[Fr] {
        match self {
            Values::Borrowed(v) => v,
            Values::Owned(v) => v,
        }
    }
}

/// The proof's polynomials (each `n` coefficients) and the work on them, on the backend's
/// device where it keeps polynomials, on the host otherwise.
pub(super) struct PolyTable<'a> {
    backend: &'a dyn Backend,
    device: Option<&'a dyn DevicePolys>,
    /// Set once a device failure left the rest to the CPU.
    on_host: AtomicBool,
    n: usize,
    entries: Mutex<Vec<Entry<'a>>>,
    /// Values already computed (the opening asks again for the transcript's evaluations).
    evaluated: Mutex<HashMap<(PolyId, [u8; 32]), Fr>>,
}

impl<'a> PolyTable<'a> {
    pub(super) fn new(backend: &'a dyn Backend, n: usize) -> Self {
        Self {
            backend,
            device: backend.device_polys(),
            on_host: AtomicBool::new(false),
            n,
            entries: Mutex::new(Vec::new()),
            evaluated: Mutex::new(HashMap::new()),
        }
    }

    /// The device, while the work is done there.
    fn device(&self) -> Option<&'a dyn DevicePolys> {
        self.device
            .filter(|_| !self.on_host.load(Ordering::Relaxed))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry<'a>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(
        &self,
        source: Source<'a>,
        device: Option<Resident>,
        host: Option<Arc<Vec<Fr>>>,
    ) -> PolyId {
        let mut entries = self.entries();
        entries.push(Entry {
            source,
            device,
            host,
        });
        entries.len() - 1
    }

    /// A polynomial of the prover's: `kept` (column `index` of a buffer the backend keeps) where
    /// the device reads it, with `host` the host's copy of it (`None`: kept only there).
    pub(super) fn add(
        &self,
        host: Option<&'a [Fr]>,
        kept: Option<(&Resident, usize)>,
    ) -> Result<PolyId, PlonkError> {
        let on_device = kept.and_then(|(r, i)| self.device?.column(r, i));
        match (on_device, host) {
            (Some(column), host) => {
                Ok(self.push(Source::Kept(column.clone(), host), Some(column), None))
            }
            (None, Some(host)) => Ok(self.push(Source::Host(host), None, None)),
            (None, None) => Err(PlonkError::Backend(BackendError::Polys {
                engine: self.backend.describe(),
                what: "reading a polynomial kept on the device",
                source: Box::new(crate::gpu::GpuError::Device {
                    stage: "polynomials",
                    message: "the backend does not read this handle and the host has no copy"
                        .into(),
                }),
            })),
        }
    }

    /// Drops what holds `p`'s coefficients (the table can make them again).
    pub(super) fn free(&self, p: PolyId) {
        let mut entries = self.entries();
        let e = &mut entries[p];
        e.host = None;
        if !matches!(e.source, Source::Kept(..)) {
            e.device = None;
        }
    }

    /// `work` on the device while the work is done there: its result; `None` where it is done
    /// on the host, from now on after a device failure where the CPU may take over (counted;
    /// where the device is required, the failure is the error).
    fn on_device<T>(
        &self,
        work: impl FnOnce(&dyn DevicePolys) -> Result<T, BackendError>,
    ) -> Result<Option<T>, PlonkError> {
        let Some(device) = self.device() else {
            return Ok(None);
        };
        match work(device) {
            Ok(t) => Ok(Some(t)),
            Err(e) if device.required() => Err(e.into()),
            Err(e) => {
                tracing::warn!(target: "keel::prover", error = %e, "polynomial work failed on the device; the CPU does the rest of the proof's opening");
                device.fell_back();
                self.on_host.store(true, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// `p` on the device: kept there, made there, or sent now.
    fn on_the_device(&self, device: &dyn DevicePolys, p: PolyId) -> Result<Resident, BackendError> {
        let (source, held) = {
            let entries = self.entries();
            (entries[p].source.clone(), entries[p].device.clone())
        };
        if let Some(r) = held {
            return Ok(r);
        }
        let r = match source {
            Source::Host(v) => device.upload(v)?,
            Source::Kept(r, _) => r,
            Source::Combine(terms, head) => {
                let handles = terms
                    .iter()
                    .map(|&(q, _)| self.on_the_device(device, q))
                    .collect::<Result<Vec<_>, _>>()?;
                let terms: Vec<(&Resident, Fr)> =
                    handles.iter().zip(terms.iter().map(|(_, c)| *c)).collect();
                device.combine(&terms, &head, self.n)?
            }
            Source::Divide(q, b) => device.divide(&self.on_the_device(device, q)?, b)?,
        };
        self.entries()[p].device = Some(r.clone());
        Ok(r)
    }

    /// `p`'s coefficients on the host: the prover's own, or made (and kept) here.
    pub(super) fn values(&self, p: PolyId) -> Result<Values<'a>, PlonkError> {
        let (source, held) = {
            let entries = self.entries();
            (entries[p].source.clone(), entries[p].host.clone())
        };
        if let Some(v) = held {
            return Ok(Values::Owned(v));
        }
        let made = match source {
            Source::Host(v) | Source::Kept(_, Some(v)) => return Ok(Values::Borrowed(v)),
            Source::Kept(r, None) => match self.device {
                Some(device) => device.read(&r)?,
                None => unreachable!("a kept polynomial came from a device"),
            },
            Source::Combine(terms, head) => {
                let inputs = terms
                    .iter()
                    .map(|&(q, _)| self.values(q))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = vec![Fr::default(); self.n];
                out.par_chunks_mut(1 << 12)
                    .enumerate()
                    .for_each(|(c, out)| {
                        let start = c << 12;
                        for (v, (_, k)) in inputs.iter().zip(&terms) {
                            for (o, x) in out.iter_mut().zip(&v[start..]) {
                                *o += *k * x;
                            }
                        }
                    });
                for (o, h) in out.iter_mut().zip(&head) {
                    *o -= h;
                }
                out
            }
            Source::Divide(q, b) => {
                let mut out = self.backend.kate_division(&self.values(q)?, b);
                out.resize(self.n, Fr::default());
                out
            }
        };
        let made = Arc::new(made);
        self.entries()[p].host = Some(made.clone());
        Ok(Values::Owned(made))
    }

    /// Makes a polynomial from `source`: on the device while the work is there, else here.
    fn make(&self, source: Source<'a>) -> Result<PolyId, PlonkError> {
        let p = self.push(source, None, None);
        if self
            .on_device(|device| self.on_the_device(device, p))?
            .is_none()
        {
            self.values(p)?;
        }
        Ok(p)
    }

    /// `Σ c_j · p_j − head`.
    pub(super) fn combine(
        &self,
        terms: &[(PolyId, Fr)],
        head: &[Fr],
    ) -> Result<PolyId, PlonkError> {
        self.make(Source::Combine(terms.to_vec(), head.to_vec()))
    }

    /// The quotient of `p − p(b)` by `X − b`.
    pub(super) fn divide(&self, p: PolyId, b: Fr) -> Result<PolyId, PlonkError> {
        self.make(Source::Divide(p, b))
    }

    /// `p(b)` for every `(p, b)` of `at`, each computed once.
    pub(super) fn evaluate(&self, at: &[(PolyId, Fr)]) -> Result<Vec<Fr>, PlonkError> {
        let key = |&(p, b): &(PolyId, Fr)| (p, b.to_repr());
        let missing: Vec<(PolyId, Fr)> = {
            let done = self.evaluated.lock().unwrap_or_else(|p| p.into_inner());
            let mut asked = HashSet::new();
            at.iter()
                .filter(|q| !done.contains_key(&key(q)) && asked.insert(key(q)))
                .copied()
                .collect()
        };
        let values = self.evaluate_now(&missing)?;
        let mut done = self.evaluated.lock().unwrap_or_else(|p| p.into_inner());
        for (q, v) in missing.iter().zip(values) {
            done.insert(key(q), v);
        }
        Ok(at.iter().map(|q| done[&key(q)]).collect())
    }

    fn evaluate_now(&self, at: &[(PolyId, Fr)]) -> Result<Vec<Fr>, PlonkError> {
        if at.is_empty() {
            return Ok(Vec::new());
        }
        let on_device = self.on_device(|device| {
            let handles = at
                .iter()
                .map(|&(p, _)| self.on_the_device(device, p))
                .collect::<Result<Vec<_>, _>>()?;
            let at: Vec<(&Resident, Fr)> = handles.iter().zip(at.iter().map(|(_, x)| *x)).collect();
            device.evaluate(&at)
        })?;
        if let Some(values) = on_device {
            return Ok(values);
        }
        let polys = at
            .iter()
            .map(|&(p, _)| self.values(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(polys
            .par_iter()
            .zip(at.par_iter())
            .map(|(p, (_, x))| self.backend.evaluate(p, *x))
            .collect())
    }

    /// The commitment to `p` over the monomial basis.
    pub(super) fn commit(&self, p: PolyId) -> Result<G1, PlonkError> {
        let on_device = self.on_device(|device| device.commit(&self.on_the_device(device, p)?))?;
        match on_device {
            Some(point) => Ok(point),
            None => Ok(self.backend.msm(Basis::Monomial, &self.values(p)?)?),
        }
    }
}

/// `ids[i]` weighted by `x^i`, for combinations in powers of a challenge.
pub(super) fn powers(ids: impl IntoIterator<Item = PolyId>, x: Fr) -> Vec<(PolyId, Fr)> {
    let mut w = Fr::ONE;
    ids.into_iter()
        .map(|p| {
            let t = (p, w);
            w *= x;
            t
        })
        .collect()
}
