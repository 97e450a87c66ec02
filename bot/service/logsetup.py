"""Where the service's log goes (adapter over `logging.handlers`): `[service] log` of the config.

Owns the one handler on the root logger: "stderr" (the default; under systemd that is the
journal), "file" (`service.log_file`, through `logging.handlers.WatchedFileHandler`: when
logrotate moves the file away, the next line reopens a new file under the configured name, so
no `copytruncate` and no signal is needed) or "syslog" (the local socket /dev/log, which
journald serves as well). Must not decide what is logged; the CLI sets the level.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from bot.config.settings import LogTarget, ServiceSettings

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SYSLOG_SOCKET = "/dev/log"


class LogSetupError(Exception):
    """The configured log destination cannot be opened (said in words, for the terminal)."""


def handler_for(service: ServiceSettings) -> logging.Handler:
    match service.log:
        case LogTarget.FILE:
            path = Path(service.log_file)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handler: logging.Handler = logging.handlers.WatchedFileHandler(path,
                                                                               encoding="utf-8")
            except OSError as e:
                raise LogSetupError(f"service.log_file {path}: cannot open: {e.strerror}") from None
            handler.setFormatter(logging.Formatter(FORMAT))
        case LogTarget.SYSLOG:
            if not os.path.exists(SYSLOG_SOCKET):
                raise LogSetupError(f'service.log = "syslog" but {SYSLOG_SOCKET} does not exist '
                                    '(no syslog daemon or journald here); use "stderr" or "file"')
            handler = logging.handlers.SysLogHandler(
                SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
            handler.ident = f"{service.name}[{os.getpid()}]: "
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        case _:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def install(service: ServiceSettings) -> str:
    """Replace the root logger's handlers by the configured one; returns where logs go now."""
    handler = handler_for(service)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    return {LogTarget.FILE: f"file {service.log_file}", LogTarget.SYSLOG: f"syslog ({SYSLOG_SOCKET})",
            LogTarget.STDERR: "stderr"}[service.log]
