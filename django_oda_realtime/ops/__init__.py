"""Operations: ``/healthz`` and ``/readyz``, ``/metrics``, structured logging and the audit log."""
