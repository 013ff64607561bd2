"""What the API and the workers share: settings, job records in Redis, storage, photo checks.

Must not import torch: the API imports it.
"""
