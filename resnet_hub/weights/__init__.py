"""The weights floor: safetensors files and what they record, the Hugging Face Hub, converters from other
ecosystems, and which variant a state dict fits.

Stands on the model floor (it needs the table and bare architectures to check shapes) and below the zoo, so
reading or converting a file never goes through timm's registry. See ``resnet_hub``'s docstring for the rule.
"""
