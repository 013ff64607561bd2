"""The worker's engines follow the SNEAKY_* settings they are configured with."""

import pytest

from core.settings import Settings
from worker import engines


@pytest.fixture
def fresh_engines(monkeypatch):
    monkeypatch.setattr(engines, "_loaded", {})
    yield engines
    engines.configure(None)


@pytest.mark.parametrize("raw, expect", [(None, True), ("1", True), ("0", False)])
def test_flip_average_setting_reaches_the_pconv_engine(fresh_engines, raw, expect):
    env = {} if raw is None else {"SNEAKY_FLIP_AVERAGE": raw}
    settings = Settings.from_env(env)
    fresh_engines.configure(settings.weights, flip_average=bool(settings.flip_average))
    assert fresh_engines.get("pconv").filler.flip_average is expect
    assert fresh_engines.get("telea").engine == "telea"  # the OpenCV engines take no such option


def test_engine_is_loaded_once_per_process(fresh_engines):
    assert fresh_engines.get("pconv") is fresh_engines.get("pconv")


def test_unknown_weights_file_is_an_unavailable_engine(fresh_engines, tmp_path):
    from core.errors import SneakyError

    fresh_engines.configure(str(tmp_path / "missing.safetensors"))
    with pytest.raises(SneakyError) as caught:
        fresh_engines.get("pconv")
    assert caught.value.code == "engine_unavailable"


@pytest.mark.parametrize("cores, processes, setting, expect", [(2, 2, 0, 1), (16, 2, 0, 8), (2, 4, 0, 1),
                                                              (8, 1, 0, 8), (8, 2, 3, 3)])
def test_each_pool_process_gets_its_share_of_the_cores(cores, processes, setting, expect):
    assert engines.threads_per_process(cores, processes, setting) == expect


def test_a_loaded_engine_uses_the_threads_it_was_given(fresh_engines):
    import torch

    before = torch.get_num_threads()
    try:
        fresh_engines.configure(None, threads=1)
        fresh_engines.get("telea")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
