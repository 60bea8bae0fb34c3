"""Pipelines (stages, criteria, history, stagnation), approval flows, help requests and notifications.

Built from `pipelines:` and `approvals:` (config.py) and enforced on every write by the built-in
plugin plugins/workflows.py through the records service's hooks.
"""
