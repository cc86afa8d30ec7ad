"""Benchmarks of the operator on the local cluster (`make bench`) and helpers the reliability
tests share with them (audit-log reading, the mixed-stage specs, extra kwok capacity)."""
