"""GitOps support: the Argo CD health check, the apply-time admission warnings, pipeline templates."""
