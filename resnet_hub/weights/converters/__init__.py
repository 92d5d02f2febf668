"""Converters from other ecosystems' checkpoints into our state-dict layout, one module per source.

``torchvision``, ``timm``, ``keras`` and ``transformers`` each expose ``convert(path, model)``;
:func:`resnet_hub.weights.converters.dispatch.convert_checkpoint` picks one and writes safetensors with provenance.
``timm_resnetv2`` is also the checkpoint filter timm's builder uses for pretrained ResNetV2 weights.
"""
