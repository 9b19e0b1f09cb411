"""Operations: health and readiness probes, Prometheus metrics, JSON logs, chain export and import.

See docs/operations.md for what each endpoint means and what to alert on.
"""
