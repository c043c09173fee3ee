"""Discovery: order, isolation of broken plugins, plugin folders, recipe modules, environment toggles."""

from pathlib import Path

import pytest

from ofa_core import OFAError
from ofa_core.registry.discovery import PluginLoader, load_plugins

PLUGIN = """
from ofa_core.plugin import hookimpl
from ofa_core.plugin import PromptTemplate

@hookimpl
def ofa_register_prompts(register):
    register("{name}.en", PromptTemplate("{name}.en", "en", " {name}", "{{x}}"))
"""


def install_fake(site: Path, distribution: str, entry: str, module: str, source: str) -> None:
    """A real (tiny) installed distribution: dist-info with an `ofa_core` entry point, plus its module."""
    info = site / f"{distribution}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ofa_core]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_fake(site, "ofa-plugin-zeta", "zeta", "zeta_plugin", PLUGIN.format(name="zeta"))
    install_fake(site, "ofa-plugin-alpha", "alpha", "alpha_plugin", PLUGIN.format(name="alpha"))
    install_fake(site, "ofa-plugin-broken", "broken", "broken_plugin", "import jieba_not_installed\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    return site


def test_discovery_order_builtin_entrypoints_folder_recipe(site, tmp_path, capsys):
    folder = tmp_path / "myplugins"
    folder.mkdir()
    (folder / "local_one.py").write_text(PLUGIN.format(name="local"))
    (folder / "notes.txt").write_text("ignored")
    (tmp_path / "recipe_plugin.py").write_text(PLUGIN.format(name="recipe"))
    plugins = load_plugins([folder], environ={})
    plugins.load_recipe_modules(["recipe_plugin.py"], tmp_path)
    origins = [(info.name, info.origin) for info in plugins.infos]
    assert origins[0][1] == "builtin" and ("core", "builtin") in origins
    entrypoints = [name for name, origin in origins if origin == "entrypoint"]
    assert entrypoints == sorted(entrypoints) and {"alpha", "zeta"} <= set(entrypoints)
    assert origins[-2:] == [("local_one", "plugins-dir"), ("recipe_plugin", "recipe")]
    assert [o for _, o in origins] == sorted(
        (o for _, o in origins), key=["builtin", "entrypoint", "plugins-dir", "recipe"].index
    )
    registry = plugins.registry()
    assert registry.prompts.entry("alpha.en").version == "1.0"
    assert registry.prompts.entry("local.en").origin == "plugins-dir"


def test_a_broken_plugin_is_isolated_and_reported(site, capsys):
    plugins = load_plugins(environ={})
    registry = plugins.registry()
    assert "alpha.en" in registry.prompts and "zeta.en" in registry.prompts
    [failure] = [f for f in registry.failures if f.name == "broken"]
    assert (
        failure.origin == "entrypoint"
        and "ModuleNotFoundError" in failure.error
        and "jieba_not_installed" in failure.error
    )
    warning = [line for line in capsys.readouterr().err.splitlines() if "broken" in line]
    assert warning == [
        "warning: plugin 'broken' (entrypoint) failed to load: ModuleNotFoundError: "
        "No module named 'jieba_not_installed' (disable with OFA_DISABLE_PLUGINS=broken)"
    ]


def test_environment_toggles(site, capsys):
    builtins_only = load_plugins(environ={"OFA_LOAD_PLUGINS": ""})
    builtins = {i.name for i in builtins_only.infos}
    assert "core" in builtins and {i.origin for i in builtins_only.infos} == {"builtin"}
    only_alpha = load_plugins(environ={"OFA_LOAD_PLUGINS": "alpha"})
    assert {i.name for i in only_alpha.infos} == builtins | {"alpha"}  # built-ins always load
    assert not only_alpha.failures
    disabled = load_plugins(environ={"OFA_DISABLE_PLUGINS": "broken, zeta"})
    assert "zeta" not in {i.name for i in disabled.infos} and not disabled.failures
    capsys.readouterr()
    traced = load_plugins(environ={"OFA_LOAD_PLUGINS": "alpha", "OFA_TRACE_PLUGINS": "1"})
    traced.registry()
    traced.manager.hook.ofa_register_prompts(register=lambda *a, **k: None)
    assert "ofa_register_prompts" in capsys.readouterr().err


def test_plugins_dir_from_environment_and_default_folder(site, tmp_path):
    env_dir = tmp_path / "envdir"
    env_dir.mkdir()
    (env_dir / "from_env.py").write_text(PLUGIN.format(name="env"))
    package = tmp_path / "plugins" / "pkg_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN.format(name="pkg"))
    assert "env.en" in load_plugins(environ={"OFA_PLUGINS_DIR": str(env_dir)}).registry().prompts
    default = load_plugins(environ={}).registry()  # ./plugins, since the cwd is tmp_path
    assert default.prompts.entry("pkg.en").plugin == "pkg_plugin"
    import ofa_local_plugins.pkg_plugin  # noqa: F401  (a stable, importable name, so readers pickle)


def test_broken_folder_plugin_and_missing_folder(site, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "syntax.py").write_text("def (:\n")
    plugins = load_plugins([folder], environ={})
    assert any(f.name == "syntax" and "SyntaxError" in f.error for f in plugins.failures)
    with pytest.raises(OFAError, match="nowhere: plugins folder not found; fix --plugins-dir or OFA_PLUGINS_DIR"):
        load_plugins([tmp_path / "nowhere"], environ={})


def test_recipe_modules_fail_loudly(tmp_path):
    plugins = PluginLoader(environ={})
    with pytest.raises(OFAError, match=r"plugins.load\[0\]: .*missing.py does not exist"):
        plugins.load_recipe_modules(["missing.py"], tmp_path)
    with pytest.raises(OFAError, match=r"plugins.load\[1\]: cannot import 'no_such_module_xyz': ModuleNotFoundError"):
        plugins.load_recipe_modules(["json", "no_such_module_xyz"], tmp_path)


def test_core_package_never_imports_ofa_tasks():
    for path in Path(__file__).parents[2].joinpath("ofa_core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import ofa_tasks" not in text and "from ofa_tasks" not in text, path
