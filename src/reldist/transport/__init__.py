"""Transports: where built messages go (``outbox`` writes ``.eml`` files, ``smtp`` sends them).

``base`` says what every transport takes and returns, ``factory`` picks the one the workspace
asks for; the SMTP transport is ``smtp`` with ``connect``, ``session``, ``replies`` and ``secrets``.
"""
