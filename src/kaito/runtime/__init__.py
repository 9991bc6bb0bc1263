"""What runs inside the pods: the inference server and the tuning job.

Imports only `kaito.runtime.*`; everything it needs arrives through arguments and settings.
"""
