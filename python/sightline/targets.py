"""Targets in pytorch-grad-cam's style: which output each image's map explains."""

import operator


class ClassifierOutputTarget:
    """The logit of one class (pytorch-grad-cam's ClassifierOutputTarget)."""

    def __init__(self, category):
        self.category = int(category)

    def __call__(self, model_output):
        if len(model_output.shape) == 1:
            return model_output[self.category]
        return model_output[:, self.category]

    def __repr__(self):
        return f"ClassifierOutputTarget({self.category})"


def class_index(target):
    """The class index of one target: an int (or NumPy / 0-d tensor integer), or a
    ClassifierOutputTarget (Sightline's or pytorch-grad-cam's own, recognised by name). Other
    target kinds raise ValueError."""
    if type(target).__name__ == "ClassifierOutputTarget" and hasattr(target, "category"):
        return int(target.category)
    if not isinstance(target, bool):
        try:
            return operator.index(target)
        except TypeError:
            pass
    raise ValueError(
        f"targets: {type(target).__name__} is not supported; give ClassifierOutputTarget(class) "
        "or class indices (the engine explains logits)")
