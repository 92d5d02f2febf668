"""The tasks floor: what a user runs -- data and the input pipeline, fine-tuning (one process, torchrun, Ray
Train), evaluation, prediction (local and Ray Data), benchmarks, pictures and publishing.

``export/`` (installed as ``resnet_hub.export``) stands on this floor too: the accuracy gate evaluates, and the
benchmark and batch evaluation run exports. Tasks may import one another (never in a circle) and every floor
below; only the CLI stands above. See ``resnet_hub``'s docstring for the rule.
"""
