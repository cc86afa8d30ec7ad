"""The operator: kopf handlers, watch cache, work queue and the reconciler."""
