"""End-to-end applications behind the ``sktilt`` command (one module per sub-command)."""
