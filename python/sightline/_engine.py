"""Models and inputs on their way to the C++ engine: ScriptModules as they are, nn.Modules traced
once, engines (a model split at a layer) kept per model, targets parsed."""

import warnings
import weakref

import numpy as np
import torch

from . import _sightline
from .targets import class_index

# model -> {(layer, options): Engine}; an engine keeps the split graphs the executor optimised.
_engines = weakref.WeakKeyDictionary()
# nn.Module -> {input shape: traced ScriptModule}
_traced = weakref.WeakKeyDictionary()


def as_input(x):
    """A torch.Tensor for the engine; a NumPy array is wrapped without a copy."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"input: expected a torch.Tensor or a NumPy array, got {type(x).__name__}")
    return x


def model_name(model):
    """How messages name the model (the file name in the CLI's)."""
    return getattr(model, "original_name", None) or type(model).__name__


def script_module(model, x):
    """The TorchScript module the engine runs: a ScriptModule itself, an nn.Module traced with
    `x` in eval mode (once per input shape; the traced module shares the module's parameters)."""
    if isinstance(model, torch.jit.ScriptModule):
        return model
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.jit.ScriptModule or an nn.Module, got {type(model).__name__}")
    by_shape = _traced.setdefault(model, {})
    shape = tuple(x.shape)
    if shape not in by_shape:
        if not by_shape:
            warnings.warn(
                f"sightline: tracing {type(model).__name__} with torch.jit.trace on the given input (eval mode); "
                "pass a torch.jit.ScriptModule to skip this", stacklevel=5)
        model.eval()
        with torch.no_grad():
            by_shape[shape] = torch.jit.trace(model, x.detach().float(), check_trace=False)
    return by_shape[shape]


def layer_name(model, layer):
    """A dotted layer path: given as a string (None = automatic), or found for a submodule object
    (pytorch-grad-cam's target_layers=[model.layer4[-1]])."""
    if layer is None:
        return ""
    if isinstance(layer, str):
        return layer
    if isinstance(layer, torch.nn.Module):
        for name, module in model.named_modules():
            if module is layer and name:
                return name
        raise ValueError(f"layer: the {type(layer).__name__} given is not a submodule of the model (for a "
                         "ScriptModule give the layer's name, e.g. \"layer4[-1]\")")
    raise ValueError(f"layer: expected a dotted layer name or a submodule, got {type(layer).__name__}")


def engine(model, x, layer, options):
    """The engine of (model, layer, options), made on first use with `x` as the example input."""
    script = script_module(model, x)
    key = (layer_name(model, layer), tuple(sorted(options.items())))
    engines = _engines.setdefault(script, {})
    if key not in engines:
        engines[key] = _sightline.Engine(script, model_name(script), key[0], x, dict(options))
    return engines[key]


def target_spec(targets):
    """(text, per-image classes, one map per image) for the engine: None = top1; "topK" / "all" /
    an index as text; an int = that class for every image; a sequence = one target per image."""
    if targets is None:
        return "top1", [], True
    if isinstance(targets, str):
        text = targets.strip().lower()
        return text, [], text == "top1" or text.isdigit()
    if isinstance(targets, torch.Tensor):
        targets = targets.tolist()
    if isinstance(targets, (list, tuple, np.ndarray)):
        per_image = [class_index(t) for t in targets]
        if not per_image:
            raise ValueError("targets: empty list; give one target per image, or None for each image's top class")
        return "", per_image, True
    index = class_index(targets)
    if index < 0:
        raise ValueError(f"targets: class index {index} is negative")
    return str(index), [], True


def run(model, x, layer, methods, targets, options):
    """The engine's result dict for one batch; `one_map` says each image has one target."""
    x = as_input(x)
    if x.dim() == 4 and x.size(0) > 0:
        found = engine(model, x, layer, options)
    else:  # the engine's own shape message
        _sightline.engine_input(x)
    text, per_image, one_map = target_spec(targets)
    result = found.explain(x, [m.lower() for m in methods], text, per_image)
    return result, one_map
