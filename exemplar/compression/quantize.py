"""int8 post-training quantization through torchao, the maintained path for torch 2.13
(``torch.ao.quantization`` is deprecated and its PT2E flow moved to torchao).

- dynamic: ``torchao.quantization.quantize_`` with ``Int8DynamicActivationInt8WeightConfig``: int8
  weights (per channel) and activations quantized per token at run time. torchao applies it to
  ``nn.Linear`` only; convolutions stay float and are listed as such with the reason.
- static: PT2E. ``torch.export`` the model, annotate it with ``X86InductorQuantizer`` (int8 weights
  per channel, int8 activations per tensor), calibrate the observers on a few training rows and
  ``convert_pt2e``. The result holds int8 weights and runs as quantize/dequantize reference ops in
  eager mode (int8 numerics; fused int8 kernels need ``torch.compile``, which is not used here).

Every function returns the quantized model and a :class:`QuantizationReport` naming each Linear/Conv
layer as quantized or float (with the reason), so nothing is left float silently.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from exemplar.compression.magnitude import PRUNABLE

_EXPORT_LOCK = threading.Lock()  # torch.export / PT2E tracing is not thread-safe (Prefect runs seeds in threads)
_LINEAR_ONLY = "torchao quantize_ (Int8DynamicActivationInt8WeightConfig) quantizes nn.Linear only; this layer type stays float"
_ONE_INPUT = ("a Linear with one input feature (a one-column table's first layer) stays float: torchao's int8 "
              "weight quantization fails on it (its per-row scale reshape raises)")


def _dynamic_int8_supported(module: nn.Module, name: str = "") -> bool:
    """torchao's filter: the Linear layers its int8 path can quantize (not those with one input feature)."""
    return isinstance(module, nn.Linear) and module.in_features > 1


@dataclass
class QuantizationReport:
    method: str
    quantized: list[str] = field(default_factory=list)  # layer names (e.g. "backbone.head")
    float_layers: dict[str, str] = field(default_factory=dict)  # layer name -> why it stayed float
    executed_as: str = ""


def _torchao():
    """Import torchao quietly: on CPU machines it logs failed loads of CUDA-only extensions, and torch
    logs a deprecation notice about an Enum torchao registers; neither concerns the user."""
    logging.getLogger("torchao").setLevel(logging.ERROR)
    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        import torchao.quantization
    finally:
        pytree.setLevel(level)
    return torchao.quantization


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Linear and Conv modules by qualified name: the layers quantization is expected to cover."""
    return {name: module for name, module in model.named_modules() if isinstance(module, PRUNABLE)}


def quantize_dynamic_int8(model: nn.Module) -> tuple[nn.Module, QuantizationReport]:
    """Dynamic int8 copy of `model` (eval mode) and which layers were quantized."""
    ao = _torchao()
    quantized = copy.deepcopy(model).eval()
    with _EXPORT_LOCK:
        ao.quantize_(quantized, ao.Int8DynamicActivationInt8WeightConfig(), filter_fn=_dynamic_int8_supported)
    report = QuantizationReport("torchao quantize_ Int8DynamicActivationInt8WeightConfig", executed_as="torchao int8 tensor subclass")
    for name, module in weight_layers(quantized).items():
        if type(module.weight) not in (nn.Parameter, torch.Tensor):
            report.quantized.append(name)
        elif not isinstance(module, nn.Linear):
            report.float_layers[name] = _LINEAR_ONLY
        else:
            report.float_layers[name] = _ONE_INPUT if module.in_features == 1 else "torchao left this Linear float"
    return quantized, report


def export_for_static_int8(model: nn.Module, calibration_x: torch.Tensor) -> torch.fx.GraphModule:
    """`model` (eval mode) exported with torch.export for PT2E, batch size dynamic: the costly, weight-independent
    part of :func:`quantize_static_int8`, reusable for every model of the same architecture."""
    example = calibration_x[:2] if len(calibration_x) >= 2 else calibration_x.repeat(2, *([1] * (calibration_x.dim() - 1)))
    batch = torch.export.Dim("batch", min=1)
    with _EXPORT_LOCK:
        return torch.export.export(copy.deepcopy(model).eval(), (example,), dynamic_shapes=({0: batch},)).module()


def architecture_key(model: nn.Module) -> tuple:
    """Models with equal keys export to the same graph: same module tree (repr) and parameter/buffer shapes."""
    return (type(model).__qualname__, repr(model), tuple((k, tuple(v.shape), v.dtype) for k, v in model.state_dict().items()))


def quantize_static_int8(model: nn.Module, calibration_x: torch.Tensor, exported: torch.fx.GraphModule | None = None) -> tuple[nn.Module, QuantizationReport]:
    """Static int8 PT2E copy of `model` calibrated on (M, ...) inputs (M >= 1); any batch size runs.

    `exported`: :func:`export_for_static_int8` of a model with the same :func:`architecture_key` (any
    weights); this model's weights are loaded into a copy of it instead of exporting again (the same
    quantized model: tests/unit/compression/test_quantize.py)."""
    _torchao()
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    if exported is None:
        graph = export_for_static_int8(model, calibration_x)
    else:
        with warnings.catch_warnings():  # torch's own pytree pickling warns about a deprecated isinstance
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            graph = copy.deepcopy(exported)
        graph.load_state_dict(model.state_dict(), strict=True)
    with _EXPORT_LOCK:
        quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            prepared(calibration_x)
        converted = convert_pt2e(prepared)
    return converted, _static_report(model, converted)


def _static_report(model: nn.Module, converted: torch.fx.GraphModule) -> QuantizationReport:
    report = QuantizationReport(
        "torchao PT2E X86InductorQuantizer (static, calibrated)",
        executed_as="quantize/dequantize reference ops in eager mode (int8 numerics, no fused int8 kernels)",
    )
    quantized = _pt2e_quantized_layers(converted)
    for name in weight_layers(model):
        if name in quantized:
            report.quantized.append(name)
        else:
            report.float_layers[name] = "X86InductorQuantizer did not annotate this layer"
    return report


def _pt2e_quantized_layers(graph_module: torch.fx.GraphModule) -> set[str]:
    """Names of the modules whose conv/linear op reads a dequantized (int8-stored) weight."""
    ops = {torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.conv3d.default, torch.ops.aten.linear.default}
    found = set()
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target not in ops:
            continue
        weight = node.args[1]
        if weight.op == "call_function" and "dequantize" in str(weight.target):
            stack = list(node.meta.get("nn_module_stack", {}).values())
            if stack:
                found.add(stack[-1][0])
    return found
