"""OpenVINO CPU backend for the encoder: the same embedding as the torch module, faster on CPU.

The torch graphs of :mod:`core.encoder.export` (spectral filters as DFT matmuls) are converted
with ``openvino.convert_model`` once per encoder fingerprint, runtime version and code version,
saved to the user cache (``ov.save_model(..., compress_to_fp16=False)``: the default fp16
weight compression cost cosine similarity 0.99955) and compiled for the CPU:

* ``precision="fp32"``: one model, ``INFERENCE_PRECISION_HINT=f32``.
* ``precision="bf16"`` (mixed; CPUs with bf16 units): three models chained per call - image
  norm + EfficientViT in f32, SpectFormer stages 1-3 in bf16, SpectFormer tail + gate in f32
  (see :mod:`core.encoder.export` for why).

Each batch size a caller keeps using is also compiled with a fixed shape, once, in the
background (:mod:`core.encoder.shapes`): 5-20 % faster than the dynamic-batch model, which
serves every call until the fixed one is ready, and one-off sizes and any beyond the few kept.

CPU pinning is switched off: pinned OpenVINO workers and torch's OpenMP threads in the same
process slowed torch (the rest of the engine) ~20-fold on a 2-core machine.

OpenVINO is an optional dependency (``pip install 'painmon[openvino]'``); importing this module
does not import it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.encoder.backbone import copy_backbone, reference_from_state_dict, released_state_dict, snapshot_backbone
from core.encoder.cache import Entry, code_version, commit, temp_path, verify
from core.encoder.export import GraphPart, export_graphs
from core.encoder.fast import FastTinyBioMoE
from core.encoder.model import EMBED_DIM, TinyBioMoE, check_images
from core.encoder.shapes import ShapeSpecialiser
from core.encoder.weights import encoder_fingerprint

if TYPE_CHECKING:
    from core.encoder.loader import EncoderInfo

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'painmon[openvino]'"
HINTS = ("auto", "latency", "throughput")
"""``latency``: one request per call using every thread; ``throughput``: the batch split across
``streams`` requests of ``threads // streams`` threads; ``auto``: latency below
``2 * streams`` images, throughput from there (measured faster at batch 8 on 2 cores, slower
at batch 1, where a stream has half the threads)."""
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class OpenVINOUnavailable(ImportError):
    """OpenVINO cannot be imported here (not installed, or broken)."""


def import_openvino() -> Any:
    """The ``openvino`` module, or :class:`OpenVINOUnavailable` saying how to install it."""
    try:
        import openvino  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:  # also a sys.modules entry set to None
        raise OpenVINOUnavailable(f"OpenVINO is not available ({exc}); install it with {INSTALL_HINT}") from None
    return openvino


def openvino_version() -> str | None:
    """The installed OpenVINO runtime version, or None when it cannot be imported."""
    try:
        return str(import_openvino().get_version())
    except OpenVINOUnavailable:
        return None


_core_lock = threading.Lock()
_core: Any = None


def _ov_core() -> Any:
    global _core
    with _core_lock:
        if _core is None:
            _core = import_openvino().Core()
        return _core


def openvino_supports_bf16() -> bool:
    """True when OpenVINO's CPU plugin offers bf16 here (bf16 units, not capped by ONEDNN_MAX_CPU_ISA)."""
    from core.encoder.precision import isa_capped_below_bf16

    if isa_capped_below_bf16():  # with only oneDNN capped, OpenVINO still claims bf16, then fails to compile
        return False
    try:
        return "BF16" in _ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except (OpenVINOUnavailable, RuntimeError):
        return False


# --------------------------------------------------------------------------- conversion + cache


def convert_part(part: GraphPart) -> Any:
    """``openvino.convert_model`` of one export graph, with a dynamic batch and named tensors."""
    ov = import_openvino()
    shapes = [ov.PartialShape(list(shape)) for _, shape in part.inputs]
    with torch.no_grad():
        model = ov.convert_model(part.module, example_input=part.example_inputs(), input=shapes)
    for port, (name, _) in zip(model.inputs, part.inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, part.outputs, strict=True):
        port.get_tensor().set_names({name})
    return model


def cache_entry(part: GraphPart, fingerprint: str, root: Path | None = None) -> Entry:
    """Where the converted ``part`` of the encoder with ``fingerprint`` is cached."""
    key = {
        "what": "openvino-ir",
        "fingerprint": fingerprint,
        "part": part.name,
        "openvino": openvino_version(),
        "torch": torch.__version__.split("+")[0],
        "code": code_version(),
    }
    return Entry.for_key("openvino", f"{fingerprint}-{part.name}", key, root)


def load_or_convert(part: GraphPart, fingerprint: str, root: Path | None = None) -> Any:
    """The converted model of ``part``: from the cache when intact, else converted and cached.

    A missing, stale (other key) or corrupt (checksum, or OpenVINO cannot read it) entry is
    rebuilt, with one log line saying why; a cache folder that cannot be written costs only
    the conversion on every start (logged), never the encoder.
    """
    ov = import_openvino()
    entry = cache_entry(part, fingerprint, root)
    reason = verify(entry, (".xml", ".bin"))
    if reason is None:
        try:
            return _ov_core().read_model(str(entry.path(".xml")))
        except RuntimeError as exc:
            reason = f"unreadable by OpenVINO ({str(exc).strip().splitlines()[0][:120]})"
    if reason == "not cached yet":
        log.info("converting encoder part %r to OpenVINO (once for these weights; cached in %s)",
                 part.name, entry.folder)
    else:
        log.warning("OpenVINO cache entry %s: %s; rebuilding it", entry.path(".xml"), reason)
    model = convert_part(part)
    tmp_xml: Path | None = None
    try:
        tmp_xml = temp_path(entry, ".xml")  # save_model writes the .bin beside it, same stem
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        commit(entry, {".xml": tmp_xml, ".bin": tmp_xml.with_suffix(".bin")})
    except (OSError, RuntimeError) as exc:
        log.warning("cannot write the OpenVINO cache in %s (%s): converting at every start", entry.folder, exc)
    finally:
        if tmp_xml is not None:  # left over only when writing failed
            tmp_xml.unlink(missing_ok=True)
            tmp_xml.with_suffix(".bin").unlink(missing_ok=True)
    return model


# --------------------------------------------------------------------------- the encoder module


def compile_config(precision: str, *, threads: int, hint: str, streams: int) -> dict[str, Any]:
    """The CPU plugin settings for one part (``precision``: fp32 or bf16). ``threads`` is the total
    over all streams (OpenVINO gives each of ``streams`` requests ``threads // streams``)."""
    cfg: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
        "PERFORMANCE_HINT": hint.upper(),
        "INFERENCE_NUM_THREADS": int(threads),
        "ENABLE_CPU_PINNING": False,
    }
    if hint == "throughput":
        cfg["NUM_STREAMS"] = int(streams)
    return cfg


class OpenVINOEncoder(nn.Module):
    """Tiny-BioMoE on the OpenVINO CPU runtime: (N, 3, 224, 224) float in [0, 1] -> (N, 192) float32.

    Args:
        reference: a loaded reference encoder (only read).
        precision: ``fp32`` or ``bf16`` (mixed: SpectFormer stages 1-3 in bf16, the rest fp32).
        threads: CPU threads for inference (default: torch's thread count, so one setting governs
            both runtimes).
        hint: ``latency`` (one request using all threads per call), ``throughput`` (``streams``
            requests with ``threads // streams`` threads each; a batch is split across them) or
            ``auto`` (latency for batches below ``2 * streams``, throughput from there).
        streams: parallel requests for ``throughput``/``auto`` (default 2; 1 with one thread).
        cache_root: cache folder override (default: :func:`core.encoder.cache.cache_root`).
        spectral_filter, whole_model: measurement variants (FFT kept; bf16 over the whole model),
            see :func:`core.encoder.export.export_graphs`; not faster or not faithful.
        fixed_shapes: compile each recurring batch size with a fixed shape (the default);
            False serves every call from the dynamic-batch model (a measurement variant).

    Shape:
        - input: (N, 3, 224, 224) float tensor on the CPU, values in [0, 1]
        - output: (N, 192) float32 CPU tensor

    ``state_dict()`` / ``load_state_dict()`` speak the released backbone format; loading new weights
    converts (or fetches from the cache) and recompiles, so it can never serve stale weights.
    """

    backend = "openvino"
    info: EncoderInfo
    """Where the weights came from (set by :func:`core.encoder.load_encoder`)."""

    def __init__(self, reference: TinyBioMoE, *, precision: str = "fp32", threads: int | None = None,
                 hint: str = "auto", streams: int | None = None, cache_root: Path | None = None,
                 spectral_filter: str = "dft", whole_model: bool = False, fixed_shapes: bool = True) -> None:
        super().__init__()
        if precision not in _OV_PRECISION:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(_OV_PRECISION)}, got {precision!r}")
        if hint not in HINTS:
            raise ValueError(f"hint must be one of {', '.join(HINTS)}, got {hint!r}")
        self.precision = precision
        self.threads = max(1, int(threads if threads is not None else torch.get_num_threads()))
        self.hint = hint
        self.streams = max(1, min(int(streams or 2), self.threads)) if hint != "latency" else 1
        self._cache_root = cache_root
        self._spectral_filter, self._whole_model = spectral_filter, whole_model
        self._fixed_shapes = fixed_shapes
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._shapes: ShapeSpecialiser[tuple[str, int], list[list[Any]]] = ShapeSpecialiser(
            self._compile_static, name="painmon-openvino-shapes")
        self._build(reference)

    # -- construction -------------------------------------------------------------------------
    def _build(self, reference: TinyBioMoE) -> None:
        ref = reference.to("cpu").eval()
        self._backbone = snapshot_backbone(ref)
        self.fingerprint = encoder_fingerprint(self._backbone)
        fast = FastTinyBioMoE(ref, precision="fp32", onednn=False)
        self._parts = export_graphs(fast, self.precision, spectral_filter=self._spectral_filter,
                                    whole_model=self._whole_model)
        models = [load_or_convert(part, self.fingerprint, self._cache_root) for part in self._parts]
        self._models = models
        self._shapes.clear()
        # one request chain compiled for latency (all threads) and/or `streams` chains compiled for
        # throughput (threads shared out); which one a call uses depends on its batch size
        self._latency_lane: list[Any] | None = None
        self._lanes: list[list[Any]] = []
        if self.hint != "throughput" or self.streams == 1:
            self._latency_lane = self._compile(models, "latency")[0]
        if self.hint != "latency" and self.streams > 1:
            self._lanes = self._compile(models, "throughput")
        self._wiring = [
            ([name for name, _ in part.inputs], list(part.outputs)) for part in self._parts
        ]

    def _compile(self, models: list[Any], hint: str, *, rebuild: bool = True) -> list[list[Any]]:
        """Compile every part with ``hint``; one request chain per stream. ``rebuild``: a part that
        does not compile is converted again from the weights once (a damaged cache entry)."""
        core = _ov_core()
        streams = self.streams if hint == "throughput" else 1
        compiled = []
        for part, model in zip(self._parts, models, strict=True):
            cfg = compile_config(part.precision, threads=self.threads, hint=hint, streams=streams)
            try:
                compiled.append(core.compile_model(model, "CPU", cfg))
            except RuntimeError as exc:  # a cached IR OpenVINO reads but cannot compile: rebuild once
                if not rebuild:
                    raise
                log.warning("OpenVINO could not compile cached part %r (%s); converting it again",
                            part.name, str(exc).strip().splitlines()[0][:120])
                entry = cache_entry(part, self.fingerprint, self._cache_root)
                entry.manifest.unlink(missing_ok=True)
                model = load_or_convert(part, self.fingerprint, self._cache_root)
                compiled.append(core.compile_model(model, "CPU", cfg))
        return [[c.create_infer_request() for c in compiled] for _ in range(streams)]

    def _compile_static(self, key: tuple[str, int]) -> list[list[Any]]:
        """Request chains of every part compiled for batch ``size`` exactly (``key``: hint, size)."""
        hint, size = key
        models = []
        for part, model in zip(self._parts, self._models, strict=True):
            static = model.clone()
            static.reshape({name: [size, *shape[1:]] for name, shape in part.inputs})
            models.append(static)
        return self._compile(models, hint, rebuild=False)

    def _chains(self, n: int) -> tuple[str, list[int]]:
        """How a batch of ``n`` images runs: the hint of the request chains it uses and the
        images each chain gets (one chunk on the latency chain, or one per stream)."""
        if not self._split_batch(n):
            return ("latency" if self._latency_lane is not None else "throughput"), [n]
        return "throughput", [len(c) for c in np.array_split(np.empty(n), min(len(self._lanes), n))]

    def _lanes_for(self, hint: str, sizes: list[int]) -> list[list[Any]]:
        """The request chain of each chunk (``sizes`` images each): the fixed-shape one when
        compiled, else the dynamic one. Each call counts once per chunk size towards compiling
        the fixed ones (in the background)."""
        static = {size: self._shapes.get((hint, size)) if self._fixed_shapes else None for size in set(sizes)}
        dynamic = [self._latency_lane] if hint == "latency" and self._latency_lane is not None else self._lanes
        return [chains[i] if (chains := static[size]) is not None else dynamic[i] for i, size in enumerate(sizes)]

    def specialise(self, batch_sizes: Iterable[int], timeout: float | None = None) -> bool:
        """Compile the fixed-shape models for batches of ``batch_sizes`` images now and wait
        (a benchmark or warm-up that must time the speed later calls get); True when done in time."""
        keys: list[tuple[str, int]] = []
        for n in batch_sizes:
            if n > 0:
                hint, sizes = self._chains(int(n))
                keys += [(hint, size) for size in set(sizes)]
        return self._shapes.prepare(keys, timeout)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the fixed-shape models being compiled are ready; True when done in time."""
        return self._shapes.settle(timeout)

    @property
    def specialised(self) -> list[tuple[str, int]]:
        """(hint, images per chain) of the fixed-shape models compiled, least recently used first."""
        return self._shapes.keys()

    def _split_batch(self, n: int) -> bool:
        """Whether a batch of ``n`` images is split across the throughput streams."""
        if not self._lanes:
            return False
        return n >= (2 * len(self._lanes) if self._latency_lane is not None else 2)

    # -- identity -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """Short name of what this module computes: ``openvino-fp32`` or ``openvino-bf16`` (measurement
        variants add ``-fft`` or ``-whole``)."""
        extra = ("-fft" if self._spectral_filter == "fft" else "") + (
            "-whole" if self._whole_model and self.precision != "fp32" else "") + (
            "" if self._fixed_shapes else "-dynamic")
        return f"openvino-{self.precision}{extra}"

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def compiled_property(self, name: str) -> list[Any]:
        """The CPU plugin property ``name`` (e.g. ``INFERENCE_NUM_THREADS``) as OpenVINO reports it
        for every compiled part of every request chain (latency chain first).

        What the runtime actually took, not what was asked: settings such as the thread count
        are fixed when a model is compiled, so this is how a caller (or a test) can see that
        ``threads`` reached the runtime."""
        with self._lock:
            lanes = ([self._latency_lane] if self._latency_lane is not None else []) + self._lanes
            return [request.get_compiled_model().get_property(name) for lane in lanes for request in lane]

    def describe(self) -> str:
        """One line for logs and status bars: mode, runtime, threading and precision split."""
        if self.precision == "fp32":
            split = "fp32 throughout"
        elif len(self._parts) == 1:
            split = "bf16 throughout (unfaithful)"
        else:
            split = "SpectFormer stages 1-3 bf16; image norm, EfficientViT, SpectFormer tail, gate fp32"
        dft = self._spectral_filter == "dft"
        spectral = "spectral filter as DFT matmuls" if dft else "FFT spectral filter"
        per_stream = max(1, self.threads // max(1, self.streams))
        sched = {
            "latency": f"{self.threads} threads, latency hint",
            "throughput": f"{self.streams} streams x {per_stream} threads",
            "auto": f"{self.threads} threads below {2 * self.streams} images, {self.streams} streams x {per_stream} "
                    f"threads from there" if self._lanes else f"{self.threads} threads, latency hint",
        }[self.hint]
        return (f"Tiny-BioMoE {self.mode} on cpu (OpenVINO {openvino_version()}, {sched}; {split}; {spectral}; "
                f"{'recurring batch sizes compiled fixed' if self._fixed_shapes else 'dynamic batch only'})")

    # -- checkpoint interface in the released format ------------------------------------------
    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights this module was built from, in the released backbone format (on CPU)."""
        return copy_backbone(self._backbone)

    def state_dict(  # type: ignore[override]  # accepts torch's call forms, returns the released format
        self, *args: Any, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> dict:
        """The released-format weights (the compiled graphs are derived, never saved)."""
        return released_state_dict(self._backbone, *args, destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load released-format backbone weights: converts (or reuses the cache) and recompiles."""
        ref, result = reference_from_state_dict(state_dict, strict=strict)
        with self._lock:
            self._build(ref)
        return result

    def _apply(self, fn, recurse: bool = True):
        probe = fn(torch.zeros(1))
        if probe.dtype != torch.float32 or probe.device.type != "cpu":
            raise TypeError(
                f"the OpenVINO encoder runs on the CPU in its build precision ({self.precision}); moving it to "
                f"{probe.device.type}/{probe.dtype} is not supported - use load_encoder(..., backend='torch') "
                "for other devices"
            )
        return super()._apply(fn, recurse)

    # -- inference ----------------------------------------------------------------------------
    def _run_lane(self, lane: list[Any], images: np.ndarray) -> np.ndarray:
        values: dict[str, Any] = {"images": images}
        last = len(lane) - 1
        for i, (request, (inputs, outputs)) in enumerate(zip(lane, self._wiring, strict=True)):
            result = request.infer([values[name] for name in inputs], share_inputs=True, share_outputs=i != last)
            for j, name in enumerate(outputs):
                values[name] = result[j]
        return np.asarray(values["embedding"], dtype=np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        n = x.shape[0]
        if n == 0:
            return torch.empty(0, EMBED_DIM)
        images = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        with self._lock:
            hint, sizes = self._chains(n)
            lanes = self._lanes_for(hint, sizes)
            if len(sizes) == 1:
                y = self._run_lane(lanes[0], images)
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(len(self._lanes), thread_name_prefix="painmon-openvino")
                chunks = np.split(images, np.cumsum(sizes)[:-1])  # the sizes the lanes were chosen for
                futures = [self._pool.submit(self._run_lane, lanes[i], np.ascontiguousarray(c))
                           for i, c in enumerate(chunks)]
                y = np.concatenate([f.result() for f in futures])
        return torch.from_numpy(y)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
        shapes = getattr(self, "_shapes", None)
        if shapes is not None:
            shapes.close()


__all__ = ["HINTS", "INSTALL_HINT", "OpenVINOEncoder", "OpenVINOUnavailable", "compile_config", "convert_part",
           "import_openvino", "load_or_convert", "openvino_supports_bf16", "openvino_version"]
