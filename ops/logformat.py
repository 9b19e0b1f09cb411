"""One JSON object per log line (CONSORTIUM_LOG_FORMAT=json, the production default).

Keys: time (UTC, ISO 8601 with milliseconds), level, logger, message, then
whatever the call passed with `extra=` (the engine adds event, height and
round to commit, sync, equivocation and bodies_asked lines), and exc with the traceback
when there is one. Newlines inside values are escaped by JSON, so a log
shipper can split on lines. This module is loaded by the logging
configuration before Django's apps, so it must not import models.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (Django's request object) is logged as its str().
        return json.dumps(entry, default=str, ensure_ascii=False)
