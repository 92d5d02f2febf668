"""The model floor: the variant table (``configs``), layers and the two model families (ResNet, ResNetV2).

Pure architecture: nothing here reads a file, knows the Hub or registers with timm, so everything above can
build on it. Imports only the ground floor (``resnet_hub.errors`` and friends); see ``resnet_hub``'s docstring.
"""
