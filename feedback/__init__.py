"""Human feedback through Label Studio: server, templates, push, pull, agreement, preferences."""

__all__: list[str] = []
