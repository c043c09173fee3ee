"""OFA_TRACE_PLUGINS: the registry and the CLI call every hook through pluggy, so pluggy's trace sees them."""

import argparse
import os
import subprocess
import sys

from ofa_core.plugin import PromptTemplate, hookimpl
from ofa_core.registry.discovery import PluginLoader, load_plugins

from .conftest import REPO, Toy

BUILTINS = ("caption", "classification", "core", "vqa")


def ofa_tasks(tmp_path, **environ: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OFA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "ofa_core", "tasks"],
        cwd=tmp_path,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_trace_shows_every_builtin_plugins_hook_calls(tmp_path):
    result = ofa_tasks(tmp_path, OFA_TRACE_PLUGINS="1", OFA_LOAD_PLUGINS="")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    # pluggy's hook trace: "<name> [hook]" with the keyword arguments, then "finish <name> --> <result> [hook]"
    assert "trace:   ofa_register_tasks [hook]" in lines
    assert "trace:   finish ofa_register_tasks --> [] [hook]" in lines
    assert "trace:   ofa_register_losses [hook]" in lines
    # one call per plugin, with that plugin's own `register`
    for plugin in BUILTINS:
        assert f"      register: <register of plugin '{plugin}'>" in lines, plugin
    # in discovery order, each task plugin once (`core` registers losses, no task)
    discovered = [info.name for info in load_plugins(environ={"OFA_LOAD_PLUGINS": ""}).infos]
    tasks_calls = [lines[i + 1] for i, line in enumerate(lines) if line == "trace:   ofa_register_tasks [hook]"]
    assert tasks_calls == [f"      register: <register of plugin '{name}'>" for name in discovered if name != "core"]
    assert "vqa" in result.stdout and "classification" in result.stdout


def test_no_trace_without_the_variable(tmp_path):
    for environ in ({}, {"OFA_TRACE_PLUGINS": "0"}, {"OFA_TRACE_PLUGINS": ""}):
        result = ofa_tasks(tmp_path, OFA_LOAD_PLUGINS="", **environ)
        assert result.returncode == 0, result.stderr
        assert "trace:" not in result.stderr and "[hook]" not in result.stderr, environ


def test_a_failing_plugin_is_traced_and_isolated(capsys):
    class Broken:
        @hookimpl
        def ofa_register_prompts(register):
            raise RuntimeError("boom")

    class Other:
        @hookimpl
        def ofa_register_prompts(register):
            register("other.en", PromptTemplate("other.en", "en", " other", "{x}"))

    plugins = PluginLoader(environ={"OFA_TRACE_PLUGINS": "1"})
    plugins.add(Toy, "toy", "entrypoint")
    plugins.add(Broken, "broken", "entrypoint")
    plugins.add(Other, "other", "entrypoint")
    registry = plugins.registry()
    assert {"toy.en", "other.en"} <= set(registry.prompts.names())
    assert registry.prompts.entry("other.en").plugin == "other" and registry.prompts.entry("toy.en").plugin == "toy"
    assert [f.name for f in registry.failures] == ["broken"] and registry.failures[0].error == "RuntimeError: boom"
    err = capsys.readouterr().err
    registers = [line.strip() for line in err.splitlines() if line.strip().startswith("register: ")]
    # in registration order, the broken plugin's call traced too
    assert registers[-3:] == [
        "register: <register of plugin 'toy'>",
        "register: <register of plugin 'broken'>",
        "register: <register of plugin 'other'>",
    ]


def test_commands_go_through_pluggy_one_plugin_at_a_time(capsys):
    class Good:
        @hookimpl
        def ofa_register_commands(subparsers):
            subparsers.add_parser("hello")

    class Bad:
        @hookimpl
        def ofa_register_commands(subparsers):
            raise RuntimeError("no verb")

    plugins = PluginLoader(environ={"OFA_TRACE_PLUGINS": "1"})
    plugins.add(Bad, "bad", "entrypoint")
    plugins.add(Good, "good", "entrypoint")
    subparsers = argparse.ArgumentParser().add_subparsers()
    plugins.add_commands(subparsers)
    assert "hello" in subparsers.choices
    assert [(f.name, f.origin, f.error) for f in plugins.failures] == [("bad", "commands", "RuntimeError: no verb")]
    err = capsys.readouterr().err
    assert err.count("trace:   ofa_register_commands [hook]") == 2
