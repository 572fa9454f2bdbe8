"""Method classes with pytorch-grad-cam's call shape, so that switching is an import change:

    from sightline import HiResCAM
    from sightline.targets import ClassifierOutputTarget
    with HiResCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(281)])  # NumPy [B, H, W]

Same conventions as pytorch-grad-cam 1.5.5: the model is put in eval mode, targets=None explains
each image's top class, a list gives one target per image, the result is float32 [B, H, W] in
[0, 1] and `cam.outputs` holds the logits. Differences: one target layer (no multi-layer mean),
no reshape_transform, aug_smooth or eigen_smooth (ValueError), and a list with fewer targets than
images is a ValueError instead of all-zero maps for the images without one."""

from . import _engine


class BaseCAM:
    """A method of the registry (`key`) at one layer. Options of the engine (score_batch,
    ablation_batch, ...) may be given as keyword arguments."""

    key = None

    def __init__(self, model, target_layers, reshape_transform=None, **options):
        if reshape_transform is not None:
            raise ValueError("reshape_transform: not supported (Sightline explains [B, K, h, w] activations)")
        layers = list(target_layers) if isinstance(target_layers, (list, tuple)) else [target_layers]
        if len(layers) != 1:
            raise ValueError(f"target_layers: give one layer, got {len(layers)} (Sightline explains one layer at a time)")
        self.model = model
        self.target_layer = layers[0]
        self.options = options
        self.outputs = None

    def __call__(self, input_tensor, targets=None, aug_smooth=False, eigen_smooth=False):
        if aug_smooth or eigen_smooth:
            raise ValueError("aug_smooth / eigen_smooth: not supported by Sightline (they void the guarantees)")
        result, one_map = _engine.run(self.model, input_tensor, self.target_layer, [self.key], targets,
                                      self.options)
        self.outputs = result["logits"]
        maps = result["maps"][self.key]
        return (maps[:, 0] if one_map else maps).numpy()  # views of the engine's tensor: no copy

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        return False


def _method(class_name, key, doc):
    return type(class_name, (BaseCAM,), {"key": key, "__doc__": doc})


# pytorch-grad-cam's names for the methods both have, and CAM (exact on GAP -> Linear heads).
CAM = _method("CAM", "cam", "Class activation mapping (Zhou et al. 2016).")
HiResCAM = _method("HiResCAM", "hirescam", "HiResCAM: exact on heads linear in the activations.")
GradCAM = _method("GradCAM", "gradcam", "Grad-CAM (Selvaraju et al. 2017).")
GradCAMElementWise = _method("GradCAMElementWise", "gradcamelementwise", "Grad-CAM element-wise.")
GradCAMPlusPlus = _method("GradCAMPlusPlus", "gradcam++", "Grad-CAM++ (Chattopadhyay et al. 2018).")
XGradCAM = _method("XGradCAM", "xgradcam", "XGrad-CAM (Fu et al. 2020).")
LayerCAM = _method("LayerCAM", "layercam", "LayerCAM (Jiang et al. 2021).")
EigenCAM = _method("EigenCAM", "eigencam", "EigenCAM (Muhammad & Yeasin 2020); one map whatever the target.")
EigenGradCAM = _method("EigenGradCAM", "eigengradcam", "EigenCAM of gradient x activation.")
ScoreCAM = _method("ScoreCAM", "scorecam", "Score-CAM (Wang et al. 2020).")
AblationCAM = _method("AblationCAM", "ablationcam", "Ablation-CAM (Desai & Ramaswamy 2020).")

__all__ = ["BaseCAM", "CAM", "HiResCAM", "GradCAM", "GradCAMElementWise", "GradCAMPlusPlus", "XGradCAM",
           "LayerCAM", "EigenCAM", "EigenGradCAM", "ScoreCAM", "AblationCAM"]
