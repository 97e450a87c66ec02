"""Finding the config file: help texts that say where it is read from, a clear error naming the
file looked for (run outside the project folder), CONFBOT_CONFIG, and reload messages for
restart-only keys compared with what is running."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace

from bot.app import App
from test_cli_booking import ROOT, config_in, confbot


def test_help_explains_config_and_check_config_path():
    top = " ".join(confbot("--help").stdout.split())
    assert "--config PATH" in top and "CONFBOT_CONFIG" in top
    check = " ".join(confbot("check-config", "--help").stdout.split())
    assert "PATH the config file" in check and "config.toml in the current directory" in check
    for command in (("run",), ("booking", "list"), ("prompts", "render"), ("lockout", "list")):
        out = " ".join(confbot(*command, "--help").stdout.split())
        assert "--config CONFIG the config file (default: $CONFBOT_CONFIG" in out, (command, out)


def test_outside_the_project_folder_the_error_names_the_file_and_how_to_pass_one(tmp_path):
    for command in (("check-config",), ("booking", "list"), ("run",), ("lockout", "list")):
        res = confbot(*command, cwd=tmp_path)
        assert res.returncode == 1, (command, res.stderr)
        assert str(tmp_path / "config.toml") in res.stderr, res.stderr
        assert "CONFBOT_CONFIG" in res.stderr and "PATH" in res.stderr
        assert "config.toml:0" not in res.stderr


def test_confbot_config_names_the_file_when_no_option_does(tmp_path):
    cfg = config_in(tmp_path)
    env = {**os.environ, "CONFBOT_CONFIG": str(cfg)}
    res = subprocess.run([sys.executable, "-m", "bot.cli", "check-config"], cwd="/", env={
        **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and f"{cfg}: OK" in res.stdout, res.stderr
    res = subprocess.run([sys.executable, "-m", "bot.cli", "booking", "list"], cwd="/", env={
        **env, "CONFBOT_CONFIG": str(tmp_path / "gone.toml"), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and str(tmp_path / "gone.toml") in res.stderr
    assert "CONFBOT_CONFIG" in res.stderr


def test_reverting_a_restart_only_key_is_not_another_restart_warning(tmp_path, caplog):
    app = App(config_in(tmp_path))
    running = app.settings
    moved = replace(running, sip=replace(running.sip, port=running.sip.port + 1))
    caplog.set_level(logging.INFO, logger="confbot")
    app.apply(moved)
    assert ["config: sip.port changed; it takes effect after a restart"] == [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    caplog.clear()
    app.apply(replace(moved, capacity=replace(moved.capacity, room_max=7)))  # port as edited
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    app.apply(running)                                   # back to what the service runs with
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "config: sip.port is back to the running value; nothing to restart" in [
        r.getMessage() for r in caplog.records]
