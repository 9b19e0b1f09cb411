"""The REST API of a node under /api/v1 (PROTOCOL.md section 6); see docs/api.md."""
