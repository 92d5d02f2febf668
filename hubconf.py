"""torch.hub entrypoints: ``torch.hub.load('<owner>/resnet-hub', 'myresnet50', pretrained=True)``.

One entrypoint per variant of ``resnet_hub.model.configs.VARIANTS``, generated from that table so the list
can never drift from what timm has registered; ``torch.hub.help`` shows each one's docstring.
"""

dependencies = ["torch", "torchvision", "timm", "safetensors", "huggingface_hub"]

import resnet_hub as _resnet_hub  # noqa: E402  (also registers the variants with timm)
from resnet_hub.zoo import registry as _registry  # noqa: E402


def _hub_entrypoint(_name):
    def entrypoint(pretrained=False, **kwargs):
        return _resnet_hub.create_model(_name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = _name
    entrypoint.__doc__ = _registry.describe(_resnet_hub.VARIANTS[_name])
    return entrypoint


for _name in _resnet_hub.variant_names():
    globals()[_name] = _hub_entrypoint(_name)
