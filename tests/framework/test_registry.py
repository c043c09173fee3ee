"""Registry: provenance, duplicates naming both plugins, did-you-mean, spec type checks, isolation."""

import pytest

from ofa_core import OFAError
from ofa_core.plugin import NoOptions, PromptTemplate, TaskSpec, hookimpl
from ofa_core.registry.components import DuplicateComponent, InvalidSpec, UnknownComponent
from ofa_core.registry.discovery import PluginLoader
from ofa_core.testing import registry_with

from .conftest import Toy


def prompt(name: str) -> PromptTemplate:
    return PromptTemplate(name, "en", " hi", "{x}")


def test_provenance_records_plugin_version_and_origin():
    plugins = PluginLoader(environ={})
    plugins.add(Toy, "toy-plugin", "entrypoint", "1.2")
    entry = plugins.registry().tasks.entry("toy")
    assert (entry.plugin, entry.version, entry.origin) == ("toy-plugin", "1.2", "entrypoint")
    assert entry.spec.description == "a toy"


def test_duplicate_names_both_plugins_and_the_fix():
    class Other:
        @hookimpl
        def ofa_register_prompts(register):
            register("toy.en", prompt("toy.en"))

    plugins = PluginLoader(environ={})
    plugins.add(Toy, "first", "builtin", "0.1")
    plugins.add(Other, "second", "plugins-dir")
    with pytest.raises(DuplicateComponent) as error:
        plugins.registry()
    message = str(error.value)
    assert "prompt 'toy.en'" in message and "'first' 0.1 (builtin)" in message and "'second' (plugins-dir)" in message
    assert "replace=True" in message and "OFA_DISABLE_PLUGINS" in message


def test_replace_true_overrides_on_purpose():
    class Override:
        @hookimpl
        def ofa_register_prompts(register):
            register("toy.en", PromptTemplate("toy.en", "en", " changed", "{x}"), replace=True)

    registry = registry_with(Toy, Override)
    assert registry.prompts.get("toy.en").source == " changed"
    assert registry.prompts.entry("toy.en").plugin == "Override"


def test_unknown_name_suggests_and_lists_failed_plugins():
    class Broken:
        @hookimpl
        def ofa_register_readers(register):
            raise ModuleNotFoundError("No module named 'jieba'")

    plugins = PluginLoader(environ={})
    plugins.add(Toy, "toy", "entrypoint")
    plugins.add(Broken, "zh-metrics", "entrypoint")
    registry = plugins.registry()
    with pytest.raises(UnknownComponent) as error:
        registry.readers.get("toy_raeder")
    message = str(error.value)
    assert "unknown reader 'toy_raeder'" in message and "did you mean 'toy_reader'?" in message
    assert "plugin 'zh-metrics' failed to load: ModuleNotFoundError: No module named 'jieba'" in message
    assert "plugins loaded: toy" in message


def test_wrong_spec_type_names_the_plugin_and_drops_only_it(capsys):
    class Wrong:
        @hookimpl
        def ofa_register_tasks(register):
            register("bad", {"prompts": {}})

    plugins = PluginLoader(environ={})
    plugins.add(Wrong, "wrong-plugin", "entrypoint")
    plugins.add(Toy, "toy", "entrypoint")
    registry = plugins.registry()
    assert registry.tasks.names() == ["toy"]
    assert (
        "plugin 'wrong-plugin' registered task 'bad' as dict; expected ofa_core.plugin.TaskSpec"
        in registry.failures[0].error
    )
    assert "wrong-plugin" in capsys.readouterr().err
    with pytest.raises(InvalidSpec):
        registry_with(Wrong)


def test_a_failing_hook_keeps_none_of_its_registrations():
    class Half:
        @hookimpl
        def ofa_register_prompts(register):
            register("half.en", prompt("half.en"))
            raise RuntimeError("boom")

    plugins = PluginLoader(environ={})
    plugins.add(Half, "half", "entrypoint")
    registry = plugins.registry()
    assert "half.en" not in registry.prompts
    assert registry.failures[0].error == "RuntimeError: boom"
    assert [p.name for p in registry.plugins] == []


def test_spec_validation_happens_in_the_spec_classes():
    with pytest.raises(TypeError, match="frozen attrs class"):
        TaskSpec(prompts={"en": "x"}, reader="r", loss="l", metrics=(), generation="caption", options=dict)
    with pytest.raises(ValueError, match="name must not be empty"):
        PromptTemplate("", "en", "", "")
    assert TaskSpec(
        prompts={"en": "x"}, reader="r", loss="l", metrics=["m"], generation={}, options=NoOptions
    ).metrics == ("m",)


def test_misspelled_or_unmarked_hooks_are_reported():
    class Misspelled:
        @hookimpl
        def ofa_register_task(register):
            pass

    class Unmarked:
        def ofa_register_tasks(register):
            pass

    plugins = PluginLoader(environ={})
    assert not plugins.add(Misspelled, "misspelled", "plugins-dir")
    assert not plugins.add(Unmarked, "unmarked", "plugins-dir")
    errors = [f.error for f in plugins.failures]
    assert "unknown hook 'ofa_register_task' (did you mean 'ofa_register_tasks'?)" in errors[0]
    assert "not decorated with ofa_core.plugin.hookimpl" in errors[1]


def test_registry_errors_are_user_errors():
    assert issubclass(UnknownComponent, OFAError) and issubclass(DuplicateComponent, OFAError)
