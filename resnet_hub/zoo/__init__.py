"""The zoo floor: named models with their weights -- timm registration, ``create_model``, ``load_model`` (a model
with its weights' preprocessing and class names) and parameter counts.

Stands on the weights and model floors; every task builds its model through here. See ``resnet_hub``'s
docstring for the rule.
"""
