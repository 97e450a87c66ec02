"""`[service] log`: validated in the config, and with log = "file" the running service
(`confbot run`, a subprocess) writes its log to service.log_file and, when the file is moved away
as logrotate does, continues in a new file under the configured name."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.service import logsetup
from bot.config.load import ConfigError, load, parse_text
from bot.config.settings import LogTarget, ServiceSettings
from test_app import ROOT, free_port, wait_for


def test_log_target_is_validated_with_its_line():
    with pytest.raises(ConfigError) as e:
        parse_text('[service]\nname = "x"\nlog = "journal"\n')
    assert 'config.toml:3: service.log must be one of "stderr", "file", "syslog"' in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_text('[service]\nlog = "file"\nlog_file = "var/"\n')
    assert "config.toml:3:" in str(e.value) and "names a folder" in str(e.value)


def test_log_file_is_relative_to_the_config_and_the_shipped_config_logs_to_stderr(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[service]\nlog = "file"\nlog_file = "logs/bot.log"\n', encoding="utf-8")
    s = load(cfg).service
    assert s.log is LogTarget.FILE and s.log_file == str(tmp_path / "logs" / "bot.log")
    assert load(ROOT / "config.toml").service.log is LogTarget.STDERR


def test_an_unopenable_log_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(logsetup.LogSetupError, match="cannot open"):
        logsetup.handler_for(ServiceSettings(log=LogTarget.FILE,
                                             log_file=str(blocker / "confbot.log")))


def test_syslog_handler_goes_to_the_local_socket():
    if not os.path.exists(logsetup.SYSLOG_SOCKET):
        with pytest.raises(logsetup.LogSetupError, match="/dev/log"):
            logsetup.handler_for(ServiceSettings(log=LogTarget.SYSLOG))
        return
    h = logsetup.handler_for(ServiceSettings(log=LogTarget.SYSLOG))
    try:
        assert isinstance(h, logging.handlers.SysLogHandler) and h.ident.startswith("confbot[")
    finally:
        h.close()


def test_a_log_file_moved_away_by_logrotate_is_reopened_and_gets_the_next_lines(tmp_path):
    port = free_port()
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace("port = 2525", f"port = {port}")
    text = text.replace('log = "stderr"', 'log = "file"')
    assert 'log = "file"' in text
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    logfile, rotated = tmp_path / "var" / "confbot.log", tmp_path / "var" / "confbot.log.1"
    out = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--no-voice", "--config",
                             str(cfg)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: logfile.exists() and "confbot running" in logfile.read_text()), \
            (tmp_path / "stderr.txt").read_text()
        os.rename(logfile, rotated)                 # logrotate's default: move, then create
        # something to log: a config edit the service reloads
        time.sleep(0.05)
        cfg.write_text(text.replace("room_max = 50", "room_max = 40"), encoding="utf-8")
        assert wait_for(lambda: logfile.exists() and "config reloaded" in logfile.read_text()), \
            rotated.read_text()[-2000:]
        assert "config reloaded" not in rotated.read_text()
        assert "confbot running" not in logfile.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
    assert "stopped" in logfile.read_text()         # the shutdown lines land in the new file
    # the terminal got only the line saying where the log went
    said = (tmp_path / "stderr.txt").read_text()
    assert f"logging to {logfile}" in said and "confbot running" not in said
